#!/usr/bin/env bash
# The strategy layer against its peers, in one run: installs obp 0.5.7 and Vowpal Wabbit 9
# into their own virtual environments (.cache/venv-obp, .cache/venv-vw; from the Python
# package registry, torch included for obp: several GB on first use), runs their sides
# (bench/policy/*.py, outputs under target/bench-policy/), then aisle's side (the dev profile:
# nothing here is timed), which reads the same rows, orders and warm-start logs and writes
# bench/results/policy.md. The peers' outputs are kept: AISLE_REUSE_PEERS=1 skips their runs
# (Vowpal Wabbit's takes about 9 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${AISLE_SHARED_DATA:-../shared/data}"
out=target/bench-policy
mkdir -p "$out"
if [ "${AISLE_REUSE_PEERS:-0}" != 1 ] || [ ! -f "$out/obp/runs.json" ] || [ ! -f "$out/bandit/vw_results.json" ]; then
  obp_python=$(bash bench/policy/setup-obp.sh)
  vw_python=$(bash bench/policy/setup-vw.sh)
  echo "==> obp: the published OPE protocol on the Open Bandit sample"
  "$obp_python" bench/policy/obp_ope.py --data-path "$data/open-bandit-sample" --out "$out/obp"
  echo "==> the MovieLens 100K bandit problem, and Vowpal Wabbit on it"
  "$vw_python" bench/policy/bandit_problem.py --data "$data/movielens-100k" --out "$out/bandit"
  "$vw_python" bench/policy/vw_bandit.py --out "$out/bandit"
fi
echo "==> aisle"
cargo run -p aisle-bench -- policy --obd "$data/open-bandit-sample" --obp "$out/obp" --bandit "$out/bandit"
