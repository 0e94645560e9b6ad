#!/usr/bin/env bash
# The transformer on the shared datasets, each with the settings used for the committed
# reports: writes bench/results/transformer-<dataset>.{md,svg}.
#
#   bash bench/transformer.sh [DATASET...]     # datasets: yoochoose beauty sports
#
# The time budgets (of the early-stopped phase; the refit on all training events then takes
# about as long again) keep the whole run near an hour on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p aisle-cli -p aisle-bench
aisle=target/release/aisle
sel=("$@")
has() { [ ${#sel[@]} -eq 0 ] && return 0; for s in "${sel[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
has yoochoose && target/release/aisle-bench transformer --dataset yoochoose \
  --config '{"learning_rate":0.002,"patience":5,"time_budget_seconds":300}'
has beauty && target/release/aisle-bench transformer --dataset beauty \
  --config '{"learning_rate":0.002,"dropout":0.4,"time_budget_seconds":720}'
has sports && target/release/aisle-bench transformer --dataset sports \
  --config '{"learning_rate":0.002,"dropout":0.4,"time_budget_seconds":900}'
echo done >&2
