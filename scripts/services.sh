#!/usr/bin/env bash
# Makes sure the services the tests talk to are running on this machine: PostgreSQL (the
# `postgres` store's conformance suite and the replica tests) and NATS with JetStream (the
# replicas' event stream). Where one is not running it is started; where it is not installed
# it is installed from Debian's packages and set up for the tests (PostgreSQL: role
# `postgres` with password `postgres` on 127.0.0.1:5432; NATS: 127.0.0.1:4222, JetStream on).
# Tests read the servers from AISLE_TEST_POSTGRES and AISLE_TEST_NATS; with one set, this
# script checks that one.
set -euo pipefail
url="${AISLE_TEST_POSTGRES:-postgresql://postgres:postgres@127.0.0.1:5432/postgres}"

pg_up() { pg_isready -q -d "$url" 2>/dev/null; }

if ! command -v pg_isready >/dev/null || ! pg_up; then
  if [ -n "${AISLE_TEST_POSTGRES:-}" ] && command -v pg_isready >/dev/null; then
    echo "error: AISLE_TEST_POSTGRES=$AISLE_TEST_POSTGRES does not answer" >&2
    exit 1
  fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "PostgreSQL is not installed: installing it from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -1)
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! pg_up; then
  echo "error: PostgreSQL does not answer at $url" >&2
  exit 1
fi
# A fresh Debian cluster asks for a password over TCP (this project's machines trust
# loopback): give the tests' role the one the URL carries.
if ! psql -q -d "$url" -c 'SELECT 1' >/dev/null 2>&1; then
  runuser -u postgres -- psql -q -c "ALTER ROLE postgres PASSWORD 'postgres'"
fi
psql -q -d "$url" -c 'SELECT 1' >/dev/null
echo "PostgreSQL: $(psql -At -d "$url" -c 'SHOW server_version') at ${url##*@}"

nats="${AISLE_TEST_NATS:-nats://127.0.0.1:4222}"
hostport="${nats#nats://}"
nats_up() { (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null; }
if ! nats_up; then
  if [ -n "${AISLE_TEST_NATS:-}" ]; then
    echo "error: AISLE_TEST_NATS=$AISLE_TEST_NATS does not answer" >&2
    exit 1
  fi
  if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
    echo "NATS is not installed: installing it from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nats-server >/dev/null
  fi
  echo "starting NATS with JetStream"
  mkdir -p /var/lib/nats-server /var/log
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  for _ in $(seq 1 30); do nats_up && break; sleep 1; done
fi
if ! nats_up; then
  echo "error: NATS does not answer at $nats" >&2
  exit 1
fi
echo "NATS: $nats"
