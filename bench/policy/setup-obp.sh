#!/usr/bin/env bash
# Creates the Python environment for the Open Bandit Pipeline peer (obp 0.5.7) at
# .cache/venv-obp (or $OBP_VENV) and prints its python's path.
#
#   bash bench/policy/setup-obp.sh
#
# The pins are those ../shared/PEERS.md records as working on Python 3.11. obp 0.5.7 is an
# sdist built by poetry-core, whose metadata pins torch==1.12, Pillow==9.1.1 and PyYAML==6.0.0
# and declares Python < 3.11; no torch 1.12 wheel exists for 3.11, so one `pip install obp==0.5.7
# ... torch` fails with ResolutionImpossible. Hence two steps: the pinned dependencies (plus what
# obp imports: pyyaml, tqdm, torch), then obp itself with --no-deps. obp's other declared
# dependencies (pingouin, pyieoe, mypy-extensions, a pinned Pillow) are imported nowhere in obp.
# torch is needed only because `import obp` imports obp.utils and obp.policy.offline, which
# import torch at module level; the OPE code itself never calls it.
#
# Idempotent: when the install has finished it writes a marker holding the pin list; a later run
# with the same pins and the marker present returns at once.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${OBP_VENV:-$root/.cache/venv-obp}"
deps=(numpy==1.23.5 pandas==1.5.2 scikit-learn==1.1.3 scipy==1.9.3 seaborn==0.11.2
      matplotlib==3.7.5 pyyaml tqdm torch)
peer=obp==0.5.7
marker="$venv/.aisle-obp-installed"
want="${deps[*]} $peer"
if [ -x "$venv/bin/python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
fi
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
"${pip[@]}" "${deps[@]}" >&2
"${pip[@]}" --no-deps --ignore-requires-python "$peer" >&2
"$venv/bin/python" -c 'import obp; assert obp.__version__ == "0.5.7", obp.__version__' >&2
printf '%s\n' "$want" > "$marker"
echo "$venv/bin/python"
