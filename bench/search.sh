#!/usr/bin/env bash
# Personalised product search on the bundled Instacart sample (Ai et al., SIGIR 2017
# protocol): aisle's BM25, semantic, hybrid and re-ranked variants against the Python peer
# rank_bm25 on the same searches and documents, scored by aisle's metric code in one run.
#
#   bash bench/search.sh
#
# Fetches the MiniLM encoder (scripts/fetch-encoder.sh) and creates bench/.venv with rank_bm25
# on first use. Writes bench/results/search.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-encoder.sh >/dev/null
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
fi
bench/.venv/bin/python -c "import rank_bm25" 2>/dev/null || bench/.venv/bin/pip install --quiet "rank_bm25==0.2.2" numpy
cargo build --release --quiet -p aisle-cli -p aisle-bench
aisle=target/release/aisle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=2
target/release/aisle-bench search --export "$work/peer"
bench/.venv/bin/python bench/search_peer.py "$work/peer" "$work/rank_bm25.txt" 2> "$work/peer.log"
cat "$work/peer.log" >&2
target/release/aisle-bench search --peer "rank_bm25 BM25Okapi (Python peer)=$work/rank_bm25.txt" --out bench/results/search.md
{
  echo
  echo "Peer timing (same machine, same run): $(cat "$work/peer.log")"
} >> bench/results/search.md
