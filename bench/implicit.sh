#!/usr/bin/env bash
# aisle's ALS and BPR against the `implicit` package on the same leave-one-out split files,
# scored by aisle's metric code, in one run.
#
#   bash bench/implicit.sh [beauty|movielens|sports]    (default: beauty)
#
# Creates bench/.venv with implicit from PyPI on first use. Writes bench/results/implicit-<dataset>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=${1:-beauty}
shared="${AISLE_SHARED_DATA:-../shared/data}"
case $dataset in
  beauty) format=s3rec; input="$shared/amazon-seq-s3rec/Beauty.txt" ;;
  sports) format=s3rec; input="$shared/amazon-seq-s3rec/Sports_and_Outdoors.txt" ;;
  movielens) format=movielens; input="$shared/movielens-100k" ;;
  *) echo "unknown dataset $dataset" >&2; exit 2 ;;
esac
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet "implicit==0.7.*"
fi
cargo build --release --quiet
aisle=target/release/aisle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=2
$aisle import --data-dir "$work/data" --format $format "$input" >/dev/null
# 1. aisle at the default settings, timed alone (the speed comparison) and the split files.
$aisle eval --data-dir "$work/data" --protocol loo --models als,bpr --export-split "$work/split" \
  --json "$work/aisle-default.json" > /dev/null
# 2. implicit on exactly those files.
bench/.venv/bin/python bench/implicit_peer.py "$work/split" "$work/peer"
# 3. aisle tuned with the same budget, and implicit's lists scored by aisle's metrics.
out=bench/results/implicit-$dataset.md
{
  echo "# aisle versus implicit: ALS and BPR on $dataset (leave-one-out, full ranking)"
  echo
  echo "Command: \`bash bench/implicit.sh $dataset\`. Both sides: 64 factors, ALS 15 iterations with"
  echo "3 CG steps, BPR 50 epochs, 2 threads, seed 42; the same tuning grid (5 ALS and 4 BPR settings,"
  echo "defaults first) on the same validation split; implicit's top-20 lists are scored by aisle's"
  echo "metric code on the same test cases. implicit's ALS reads the confidence matrix \`1 + alpha\`"
  echo "on observed cells, which is aisle's confidence."
  echo
  echo '```'
  $aisle eval --data-dir "$work/data" --protocol loo --models als,bpr --tune --budget 5 \
    --peer "implicit-als=$work/peer/implicit_als.txt" --peer "implicit-bpr=$work/peer/implicit_bpr.txt" \
    --json "${out%.md}.json"
  echo '```'
  echo
  python3 - "$work/aisle-default.json" "$work/peer" <<'PY'
import json, sys
aisle = {m["model"]: m["fit_seconds"] for m in json.load(open(sys.argv[1]))["models"]}
for kind in ["als", "bpr"]:
    peer = json.load(open(f"{sys.argv[2]}/implicit_{kind}.txt.json"))
    ratio = peer["default_fit_seconds"] / aisle[kind]
    print(f"- {kind.upper()} training time at the default settings: aisle {aisle[kind]:.2f} s, "
          f"implicit {peer['default_fit_seconds']:.2f} s; implicit / aisle = {ratio:.2f} "
          f"(above 1 means aisle is faster).")
PY
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
