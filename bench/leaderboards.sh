#!/usr/bin/env bash
# Leaderboards of every classic model on the real datasets, tuned on validation splits cut
# from the training data, scored on the test split with full ranking.
#
#   bash bench/leaderboards.sh [DATASET...]     # datasets: movielens instacart beauty sports yoochoose
#
# Needs ../shared/data beside the repository (or AISLE_SHARED_DATA). Writes
# bench/results/leaderboard-<dataset>.{md,json,html}.
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${AISLE_SHARED_DATA:-../shared/data}"
cargo build --release --quiet
aisle=target/release/aisle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
all_models=pop,itemknn,userknn,rp3beta,ease,als,bpr,puresvd,tfidf,sknn,sr,hybrid,gru4rec,caser

run() { # name format input protocol models [extra eval flags...]
  local name=$1 format=$2 input=$3 protocol=$4 models=$5
  shift 5
  local dir="$work/$name" out=bench/results/leaderboard-$name
  $aisle import --data-dir "$dir" --format "$format" $input >/dev/null
  local cmd="aisle eval --protocol $protocol --models $models --tune --budget 5 $* (on: aisle import --format $format $input)"
  echo "== $name: $cmd" >&2
  local started=$SECONDS
  {
    echo "# Leaderboard: $name ($protocol protocol, full ranking)"
    echo
    echo "Command: \`bash bench/leaderboards.sh $name\`, which runs"
    echo "\`$cmd\`."
    echo "Each model is tuned (at most 5 settings, defaults first) on a validation split cut from the"
    echo "training part only, refitted on the whole training part, then scored once on the test split."
    echo "Times are wall-clock seconds on this machine ($(nproc) cores)."
    echo
    echo '```'
    $aisle eval --data-dir "$dir" --protocol "$protocol" --models "$models" --tune --budget 5 \
      --json "$out.json" --report "$out.html" "$@"
    echo '```'
  } > "$out.md.tmp"
  echo "Wall time of the whole evaluation: $((SECONDS - started)) s." >> "$out.md.tmp"
  mv "$out.md.tmp" "$out.md"
}

sel=("$@")
has() { [ ${#sel[@]} -eq 0 ] && return 0; for s in "${sel[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

has movielens && run movielens movielens "$shared/movielens-100k" loo "$all_models"
has instacart && run instacart instacart data/instacart-sample temporal "$all_models"
has beauty && run beauty s3rec "$shared/amazon-seq-s3rec/Beauty.txt" loo "$all_models"
has sports && run sports s3rec "$shared/amazon-seq-s3rec/Sports_and_Outdoors.txt" loo "$all_models"
has yoochoose && run yoochoose yoochoose "$shared/yoochoose-100k/yoochoose-clicks-100k_train_full.txt $shared/yoochoose-100k/yoochoose-clicks-100k_test.txt" session pop,itemknn,rp3beta,sknn,sr,hybrid,gru4rec,caser
echo "done" >&2
