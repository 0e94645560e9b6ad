#!/usr/bin/env bash
# A third-party API fuzzer (schemathesis 4, from PyPI, into .cache/fuzz-venv) against a live
# `aisle serve` on a copy of the bundled sample, with an admin key: it generates requests from
# /openapi.json and fails on any 5xx answer. The server's log and schemathesis' report land in
# target/api-fuzz/. Builds the debug aisle binary if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/api-fuzz
rm -rf "$out" && mkdir -p "$out"
if [ ! -x .cache/fuzz-venv/bin/schemathesis ]; then
  python3 -m venv .cache/fuzz-venv
  .cache/fuzz-venv/bin/pip install --quiet "schemathesis==4.*"
fi
cargo build --quiet -p aisle-cli
aisle=target/debug/aisle
data="$out/store"
"$aisle" import --data-dir "$data" --format instacart data/instacart-sample >"$out/import.log" 2>&1
port=$((20000 + RANDOM % 20000))
key="fuzz-admin-$RANDOM$RANDOM"
# Lexical search only: embedding the catalogue with the encoder would take minutes in a debug
# build, and the API under test is the same.
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
.cache/fuzz-venv/bin/schemathesis run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error --header "Authorization: Bearer $key" \
  --max-examples "${AISLE_FUZZ_EXAMPLES:-60}" --seed 13 --workers 2 \
  --generation-database none --report junit --report-dir "$out" --no-color
if ! kill -0 $server 2>/dev/null; then echo "the server died during fuzzing:"; tail -50 "$out/server.log"; exit 1; fi
echo "api fuzz: no server errors (report: $out/)"
