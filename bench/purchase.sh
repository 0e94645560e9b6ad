#!/usr/bin/env bash
# Purchase prediction on the bundled Instacart sample (reorders; departments in the next
# order): aisle's GBDT and MLP against LightGBM (Python peer) on the same exported features,
# split and settings, scored by aisle's metric code in one run. Creates bench/.venv with
# lightgbm on first use. Writes bench/results/purchase.md and purchase-importance.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
fi
bench/.venv/bin/python -c "import lightgbm" 2>/dev/null || bench/.venv/bin/pip install --quiet "lightgbm==4.*" numpy
cargo build --release --quiet -p aisle-cli -p aisle-bench
aisle=target/release/aisle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=2
target/release/aisle-bench purchase --export "$work"
for task in reorder department; do
  bench/.venv/bin/python bench/purchase_peer.py "$work/$task" "$work/$task-lightgbm.txt"
done
target/release/aisle-bench purchase \
  --peer "reorder:LightGBM (Python peer)=$work/reorder-lightgbm.txt" \
  --peer "department:LightGBM (Python peer)=$work/department-lightgbm.txt"
