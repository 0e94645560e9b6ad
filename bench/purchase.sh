#!/usr/bin/env bash
# Purchase prediction: aisle's GBDT (and MLP) against LightGBM (Python peer) on the same
# exported features, split and settings, scored by aisle's metric code in one run.
#
#   bash bench/purchase.sh                   the bundled Instacart sample (reorders; departments
#                                            in the next order) -> bench/results/purchase.md
#   bash bench/purchase.sh completejourney   reorders on Complete Journey (about a million rows
#                                            per target basket) -> bench/results/purchase-completejourney.md
#
# Creates bench/.venv with lightgbm on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=${1:-instacart}
shared="${AISLE_SHARED_DATA:-../shared/data}"
case $dataset in
  instacart) args=(); tasks="reorder department" ;;
  completejourney)
    args=(--completejourney "$shared/completejourney" --out bench/results/purchase-completejourney.md
      --chart bench/results/purchase-completejourney-importance.svg)
    tasks="reorder" ;;
  *) echo "unknown dataset $dataset (instacart or completejourney)" >&2; exit 2 ;;
esac
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
fi
bench/.venv/bin/python -c "import lightgbm" 2>/dev/null || bench/.venv/bin/pip install --quiet "lightgbm==4.*" numpy
cargo build --release --quiet -p aisle-cli -p aisle-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=2
target/release/aisle-bench purchase "${args[@]}" --export "$work"
peers=()
for task in $tasks; do
  bench/.venv/bin/python bench/purchase_peer.py "$work/$task" "$work/$task-lightgbm.txt"
  peers+=(--peer "$task:LightGBM (Python peer)=$work/$task-lightgbm.txt")
done
target/release/aisle-bench purchase "${args[@]}" "${peers[@]}"
