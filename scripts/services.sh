#!/usr/bin/env bash
# Makes sure the services the tests talk to are running on this machine: PostgreSQL (the
# `postgres` store's conformance suite and the replica tests). Where one is not running it is
# started; where it is not installed it is installed from Debian's packages and set up for
# the tests (role `postgres` with password `postgres`, reached on 127.0.0.1:5432).
# Tests read the server from AISLE_TEST_POSTGRES; with it set, this script checks that one.
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
