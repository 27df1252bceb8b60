#!/usr/bin/env bash
# The release step, before new code serves: refuse an unsafe configuration, migrate, collect the
# static files. Run by pharmacy-migrate.service (which pharmacy-web.service requires) or by hand
# from the new release's directory with the production environment loaded. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
# Errors stop the release; warnings are printed (the first deployment must have none, docs/deploy.md).
"$PYTHON" manage.py check --deploy --fail-level ERROR
"$PYTHON" manage.py migrate --noinput
"$PYTHON" manage.py collectstatic --noinput --verbosity 0
"$PYTHON" manage.py setup_staff_groups
