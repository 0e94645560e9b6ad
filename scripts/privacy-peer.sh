#!/usr/bin/env bash
# aisle's discrete Laplace and Gaussian noise and its privacy accounting, checked against
# OpenDP (from PyPI, into .cache/privacy-venv): two-sample KS tests, moments, and the ε of
# the same compositions. `--report` also writes bench/results/privacy-opendp.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .cache/privacy-venv/bin/python ] || ! .cache/privacy-venv/bin/python -c 'import opendp' 2>/dev/null; then
  python3 -m venv .cache/privacy-venv
  .cache/privacy-venv/bin/pip install --quiet "opendp==0.16.*"
fi
cargo build --quiet -p aisle-cli
args=()
if [ "${1:-}" = "--report" ]; then args=(--report bench/results/privacy-opendp.md); fi
.cache/privacy-venv/bin/python scripts/privacy_peer.py target/debug/aisle "${args[@]}"
