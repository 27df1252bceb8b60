#!/usr/bin/env bash
# Two test suites at once against one PostgreSQL and one Redis, each with its own database and its
# own block of Redis databases (tests/resources.py). Shows that they do not meet; also the recipe
# for two people (or two CI jobs) sharing the servers.
#   scripts/two_suites.sh tests/ops/test_worker_integration.py tests/ops/test_health.py
# DATABASE_URL's server and TEST_REDIS_URL_BASE are shared; the names differ: <name>_a/_b, offsets 0/8.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
BASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pharmacy}"
mkdir -p var
pids=()
for suite in a:0 b:8; do
  name="${suite%%:*}" offset="${suite##*:}"
  DATABASE_URL="${BASE_URL}_${name}" TEST_REDIS_DB_OFFSET="$offset" \
    "$PYTHON" -m pytest -q -p no:cacheprovider "$@" > "var/two-suites-${name}.log" 2>&1 &
  pids+=($!)
  echo "suite ${name}: database test_$(basename "${BASE_URL}")_${name}, Redis databases from ${offset} (log: var/two-suites-${name}.log)"
done
status=0
for i in 0 1; do
  wait "${pids[$i]}" || status=1
done
for name in a b; do echo "suite ${name}: $(tail -n 1 "var/two-suites-${name}.log")"; done
exit $status
