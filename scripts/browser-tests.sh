#!/usr/bin/env bash
# Browser tests of the dashboard and storefront in headless Chromium. Installs what they need
# on first use: Debian's chromium (apt) and playwright (pip, into .cache/browser-venv; it
# drives the system chromium, no browser download). Builds the debug aisle binary if needed.
# Screenshots: target/browser-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x .cache/browser-venv/bin/python ]; then
  python3 -m venv .cache/browser-venv
fi
.cache/browser-venv/bin/python -c "import playwright" 2>/dev/null \
  || .cache/browser-venv/bin/pip install --quiet "playwright==1.*"
cargo build --quiet -p aisle-cli
.cache/browser-venv/bin/python tests/browser/test_ui.py target/debug/aisle
