#!/usr/bin/env bash
# Every check CI runs, in order: formatting, lints (warnings are errors), the encoder the
# semantic-search tests need, the services the tests talk to (PostgreSQL; started or installed
# when missing), every test (the dataset tests fail when ../shared/data is
# missing: AISLE_REQUIRE_DATA=0 skips them instead, for a clone without it), the browser tests,
# a third-party API fuzzer against a live server, and aisle's privacy noise and accounting
# against OpenDP's.
set -euo pipefail
cd "$(dirname "$0")/.."
export AISLE_REQUIRE_DATA="${AISLE_REQUIRE_DATA:-1}"
step() { printf '\n==> %s\n' "$*"; }
step "cargo fmt --all --check"
cargo fmt --all --check
step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "scripts/fetch-encoder.sh"
scripts/fetch-encoder.sh
step "scripts/services.sh"
scripts/services.sh
step "cargo test --workspace (AISLE_REQUIRE_DATA=$AISLE_REQUIRE_DATA)"
cargo test --workspace 2>&1 | tee target/test.log
# Nothing may be skipped: no ignored tests, and no dataset test returning early.
ignored=$(grep -Eo '[0-9]+ ignored' target/test.log | awk '{s+=$1} END {print s+0}')
skipped=$(grep -c '^SKIPPED' target/test.log || true)
echo "tests ignored: $ignored, dataset tests skipped: $skipped"
if [ "$AISLE_REQUIRE_DATA" != 0 ] && { [ "$ignored" != 0 ] || [ "$skipped" != 0 ]; }; then
  echo "error: tests were skipped"; exit 1
fi
step "scripts/browser-tests.sh"
scripts/browser-tests.sh
step "scripts/api-fuzz.sh"
scripts/api-fuzz.sh
step "scripts/privacy-peer.sh"
scripts/privacy-peer.sh
