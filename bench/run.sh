#!/usr/bin/env bash
# The benchmark in one command: bench/run.sh [--duration 10] [--skip-large] [...]; see bench/bench.py.
# Needs PostgreSQL and Redis on 127.0.0.1 and wrk (apt-get install -y wrk). Only loopback traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
exec .venv/bin/python bench/bench.py "$@"
