#!/usr/bin/env bash
# The demo shop: SQLite, localstripe as the offline Stripe, emails written to var/emails/.
# Called by `make run`; everything it starts stops when you press Ctrl+C.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

export DEBUG="${DEBUG:-1}"
export STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_localstripe_demo}"
export STRIPE_PUBLISHABLE_KEY="${STRIPE_PUBLISHABLE_KEY:-pk_test_localstripe_demo}"
export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_localstripe_demo}"
LOCALSTRIPE_PORT="${LOCALSTRIPE_PORT:-8420}"
export STRIPE_API_BASE="${STRIPE_API_BASE:-http://127.0.0.1:${LOCALSTRIPE_PORT}}"
export STRIPE_JS_URL="${STRIPE_JS_URL:-http://127.0.0.1:${LOCALSTRIPE_PORT}/js.stripe.com/v3/}"
mkdir -p var/emails var/private var/media
# Celery: only when asked (REDIS_URL=redis://127.0.0.1:6379/<n>), emails go through a real worker
# and beat runs the periodic jobs; otherwise tasks run in-process and nothing else is needed. A Redis
# that happens to answer is not used: its database 0 may belong to someone else.

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

$BIN/python manage.py migrate --noinput
# The demo catalog is loaded once: a restart keeps the prices staff have changed since.
if $BIN/python manage.py shell -c "import sys; from catalog.models import Product; sys.exit(0 if Product.objects.exists() else 1)" 2>/dev/null; then
  echo "Catalog already present: demo data not reloaded (delete db.sqlite3 to start afresh)."
else
  $BIN/python manage.py loaddata demo_catalog
  # A baseline history row per dosage and tier, so the first price change shows its old value.
  $BIN/python manage.py populate_history --auto
fi
if $BIN/python manage.py help setup_demo_staff >/dev/null 2>&1; then
  $BIN/python manage.py setup_demo_staff
fi
# The state sales-tax table (docs/money.md, "Sales tax table") and a discount code: every figure at checkout.
$BIN/python manage.py load_sales_tax_table
$BIN/python manage.py setup_demo_discount
# A demo customer with a prescription on file (refills, reminders: docs/prescriptions.md).
$BIN/python manage.py setup_demo_prescriptions

# localstripe: the offline Stripe, with its webhooks pointed at this shop. Started through
# payments.localstripe_dev, which lets the browser's Stripe.js stand-in send its API key (CORS).
$BIN/python -m payments.localstripe_dev --host 127.0.0.1 --port "$LOCALSTRIPE_PORT" --from-scratch > var/localstripe.log 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:${LOCALSTRIPE_PORT}/js.stripe.com/v3/" && break; sleep 0.2; done
curl -fs -X POST "http://127.0.0.1:${LOCALSTRIPE_PORT}/_config/webhooks/shop" \
  -d url=http://127.0.0.1:8000/stripe/webhook/ -d secret="$STRIPE_WEBHOOK_SECRET" >/dev/null
# Auto-refill (docs/autorefill.md): the demo patient's amlodipine refill placed off-session, in
# the pharmacist's refill queue; the card is saved in localstripe, hence after it starts.
$BIN/python manage.py setup_demo_autorefill

if [ -n "${REDIS_URL:-}" ]; then
  # -P solo: one task at a time, the demo's SQLite has a single writer anyway.
  $BIN/celery -A pharmacy worker -P solo --loglevel INFO > var/celery-worker.log 2>&1 &
  pids+=($!)
  $BIN/celery -A pharmacy beat --loglevel INFO --schedule var/celerybeat-schedule > var/celery-beat.log 2>&1 &
  pids+=($!)
  celery_note="Celery worker and beat on ${REDIS_URL} (logs: var/celery-worker.log, var/celery-beat.log)"
else
  celery_note="in-process (set REDIS_URL to use a Celery worker)"
fi

echo
echo "Shop:   http://127.0.0.1:8000/      Admin: http://127.0.0.1:8000/admin/"
echo "Emails: $(pwd)/var/emails/ (one .log file per message)"
echo "Tasks:  ${celery_note}"
echo "Staff:  sign in with the password above, then a code from an authenticator app holding the"
echo "        printed TOTP secret, or: DEBUG=1 .venv/bin/python manage.py demo_totp_code <email>"
echo
$BIN/python manage.py runserver 127.0.0.1:8000
