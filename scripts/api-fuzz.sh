#!/usr/bin/env bash
# The API contract, checked by third-party tools from PyPI (into .cache/fuzz-venv) against a
# live `aisle serve` on a copy of the bundled sample:
#  1. /openapi.json validates as OpenAPI 3.1 (openapi-spec-validator);
#  2. schemathesis 4 generates valid and invalid requests from it and runs all of its checks
#     (a check switched off is named below with its reason);
#  3. a client generated from the document (openapi-python-client) ingests, recommends and
#     searches (scripts/generated_client_test.py).
# The server's log and the reports land in target/api-fuzz/. Builds the debug binary if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/api-fuzz
rm -rf "$out" && mkdir -p "$out"
if [ ! -x .cache/fuzz-venv/bin/schemathesis ]; then
  python3 -m venv .cache/fuzz-venv
  .cache/fuzz-venv/bin/pip install --quiet "schemathesis==4.*" "openapi-spec-validator==0.9.*" \
    "openapi-python-client==0.29.*"
fi
cargo build --quiet -p aisle-cli
aisle=target/debug/aisle
data="$out/store"
"$aisle" import --data-dir "$data" --format instacart data/instacart-sample >"$out/import.log" 2>&1
# A port the kernel says is free now (a random one can collide with an outgoing connection's).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key="fuzz-admin-$RANDOM$RANDOM"
# Lexical search only: embedding the catalogue with the encoder would take minutes in a debug
# build, and the API under test is the same.
# A fixed clock: the document's latest event time (now plus the allowed skew) is then the
# server's for the whole run, so generated times just past it are refused as the schema says.
AISLE_FIXED_CLOCK_MS=$(( $(date +%s) * 1000 )) \
AISLE_API_KEYS="$key:admin" AISLE_RATE_LIMIT=100000 "$aisle" serve --data-dir "$data" \
  --listen "127.0.0.1:$port" --no-encoder >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 $server 2>/dev/null; then echo "the server did not start:"; cat "$out/server.log"; exit 1; fi
  sleep 1
done
if ! curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then
  echo "the server was not ready after 300 s:"; tail -50 "$out/server.log"; exit 1
fi
base="http://127.0.0.1:$port"
curl -fsS "$base/openapi.json" -o "$out/openapi.json"
.cache/fuzz-venv/bin/openapi-spec-validator "$out/openapi.json"
# Every check, on valid and invalid data. Switched off, with the reason:
#  - use_after_free, ensure_resource_availability: stateful checks that need links between
#    operations (a created resource's id feeding a later call); the document declares none.
.cache/fuzz-venv/bin/schemathesis --config-file scripts/schemathesis.toml run "$base/openapi.json" \
  --checks all --exclude-checks use_after_free,ensure_resource_availability \
  --mode all --header "Authorization: Bearer $key" \
  --max-examples "${AISLE_FUZZ_EXAMPLES:-60}" --seed 13 --workers 2 \
  --generation-database none --report junit --report-dir "$out" --no-color
# A client generated from the document by a third-party generator, driven from Python.
rm -rf "$out/client"
(cd "$out" && ../../.cache/fuzz-venv/bin/openapi-python-client generate --path openapi.json \
  --output-path client --meta none >client-generate.log 2>&1) || { cat "$out/client-generate.log"; exit 1; }
PYTHONPATH="$out" AISLE_BASE="$base" AISLE_KEY="$key" .cache/fuzz-venv/bin/python \
  scripts/generated_client_test.py
if ! kill -0 $server 2>/dev/null; then echo "the server died during fuzzing:"; tail -50 "$out/server.log"; exit 1; fi
echo "api contract: valid OpenAPI 3.1, every schemathesis check passed, the generated client works (report: $out/)"
