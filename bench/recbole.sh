#!/usr/bin/env bash
# aisle's transformer against RecBole's SASRec on Amazon Beauty, the same file, the same
# shape (64 wide, 2 blocks, 2 heads, feed-forward 256, 50 events, dropout 0.4, batch 128,
# learning rate 0.002, full cross-entropy) for the same number of epochs, on 2 threads,
# one after the other in one run. Reports the ratio of training wall times.
#
#   bash bench/recbole.sh [EPOCHS]      (default 3)
#
# Installs torch and recbole into bench/.venv from PyPI on first use (several GB, slow).
# Writes bench/results/recbole-beauty.md.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}
shared="${AISLE_SHARED_DATA:-../shared/data}"
input="$shared/amazon-seq-s3rec/Beauty.txt"
[ -x bench/.venv/bin/python ] || python3 -m venv bench/.venv
if ! bench/.venv/bin/python -c "import recbole, torch" 2>/dev/null; then
  bench/.venv/bin/pip install --quiet torch recbole
  bench/.venv/bin/pip install --quiet "setuptools<80" "numpy<2" "pandas<2.3"
fi
cargo build --release --quiet -p aisle-cli -p aisle-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
settings="{\"epochs\":$epochs,\"patience\":1000,\"learning_rate\":0.002,\"dropout\":0.4,\"item_features\":false,\"validation_sequences\":100000}"
target/release/aisle-bench transformer --dataset beauty --config "$settings" --out "$work/aisle" >&2
aisle_fit=$(sed -n 's/^- Wall time \([0-9.]*\) s.*/\1/p' "$work/aisle/transformer-beauty.md")
aisle_row=$(grep '^| aisle transformer (float)' "$work/aisle/transformer-beauty.md")
peer=$(bench/.venv/bin/python bench/recbole_peer.py "$input" "$work/recbole" "$epochs" | tail -1)
out=bench/results/recbole-beauty.md
{
  echo "# aisle transformer versus RecBole SASRec: training wall time on Beauty"
  echo
  echo "Command: \`bash bench/recbole.sh $epochs\`. Same sequence file, same shape and optimiser settings,"
  echo "$epochs epochs each with validation after every epoch, 2 threads each, run one after the other."
  echo "aisle reads no item features here, like SASRec. An epoch means the same next-item targets on"
  echo "both sides: aisle computes every position of a sequence in one pass, RecBole expands each"
  echo "sequence into one training sample per prefix."
  echo
  echo "| system | fit wall time (s) | ratio to aisle |"
  echo "|---|---|---|"
  python3 - "$aisle_fit" "$peer" <<'PY'
import json, sys
aisle = float(sys.argv[1]); peer = json.loads(sys.argv[2])
print(f"| aisle transformer | {aisle:.0f} | 1.00 |")
print(f"| RecBole SASRec (CE) | {peer['fit_seconds']:.0f} | {peer['fit_seconds'] / aisle:.2f} |")
print()
print(f"RecBole's own full-ranking test metrics after {peer['epochs']} epochs (its metric code): "
      + ", ".join(f"{k} {v:.4f}" for k, v in peer['test'].items()))
PY
  echo
  echo "aisle after the same epochs (aisle's metric code):"
  echo
  echo "| model | HR@5 | HR@10 | HR@20 | NDCG@5 | NDCG@10 | NDCG@20 | MRR@20 |"
  echo "|---|---|---|---|---|---|---|---|"
  echo "$aisle_row"
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
