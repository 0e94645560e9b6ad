#!/usr/bin/env bash
# Creates the Python environment for the Vowpal Wabbit contextual-bandit peer at
# .cache/venv-vw: vowpalwabbit 9.x from the package registry with numpy 1.23.5, the pair
# that ../shared/PEERS.md records as working on these machines (Python 3.11).
#
#   bash bench/policy/setup-vw.sh          # prints the venv's python path when done
#
# Idempotent: once the install has finished it writes a marker file holding the pin list, and a
# later run with the same pins and a working interpreter returns at once.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${VW_VENV:-$root/.cache/venv-vw}"
pins=("vowpalwabbit>=9,<10" numpy==1.23.5)
marker="$venv/.aisle-vw-installed"
want="${pins[*]}"
if [ -x "$venv/bin/python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
"$venv/bin/python" - >&2 <<'PY'
import numpy, vowpalwabbit
from vowpalwabbit import pyvw
assert numpy.__version__ == "1.23.5", numpy.__version__
assert vowpalwabbit.__version__.startswith("9."), vowpalwabbit.__version__
pyvw.Workspace("--cb_explore_adf --quiet").finish()
PY
printf '%s\n' "$want" > "$marker"
echo "$venv/bin/python"
