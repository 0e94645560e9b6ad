#!/usr/bin/env bash
# Reorder prediction on the bundled Instacart sample: aisle's GBDT against LightGBM (Python
# peer) on the same exported features, split and settings, scored by aisle's metric code in
# one run. Creates bench/.venv with lightgbm on first use. Writes bench/results/purchase.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
fi
bench/.venv/bin/python -c "import lightgbm" 2>/dev/null || bench/.venv/bin/pip install --quiet "lightgbm==4.*" numpy
cargo build --release --quiet
aisle=target/release/aisle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=2
$aisle bench purchase --export "$work"
bench/.venv/bin/python bench/purchase_peer.py "$work" "$work/lightgbm.txt"
$aisle bench purchase --peer "LightGBM (Python peer)=$work/lightgbm.txt"
