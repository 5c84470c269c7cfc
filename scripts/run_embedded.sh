#!/usr/bin/env bash
# `make run`: the embedded DynamoDB (moto server), the table, demo data, and Django's dev server.
# Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

DYNAMODB_PORT="${DYNAMODB_PORT:-8001}"
WEB_PORT="${WEB_PORT:-8000}"
export DJANGO_DEBUG=1
export DYNAMODB_HOST="http://127.0.0.1:${DYNAMODB_PORT}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-embedded}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-embedded}"
PY=.venv/bin/python
mkdir -p .run

"$PY" manage.py run_embedded_dynamodb --port "$DYNAMODB_PORT" &
MOTO_PID=$!
cleanup() { kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 100); do
  "$PY" -c "import urllib.request,sys; urllib.request.urlopen('$DYNAMODB_HOST/moto-api/', timeout=1)" 2>/dev/null && break
  kill -0 "$MOTO_PID" 2>/dev/null || { echo "The embedded DynamoDB did not start (is port $DYNAMODB_PORT free? set DYNAMODB_PORT)"; exit 1; }
  sleep 0.2
done

"$PY" manage.py create_dynamodb_table
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py seed_demo

cat <<MSG

Lifestyle Spaces is running on http://127.0.0.1:${WEB_PORT}  (embedded DynamoDB on ${DYNAMODB_HOST})
Try:
  Admin:      http://127.0.0.1:${WEB_PORT}/admin/   (admin / admin)
  API docs:   http://127.0.0.1:${WEB_PORT}/api/docs/
  Token:      curl -s -X POST http://127.0.0.1:${WEB_PORT}/api/auth/token/ -H 'Content-Type: application/json' -d '{"username":"alice","password":"alice-demo-pass"}'
  Backfill:   DYNAMODB_HOST=${DYNAMODB_HOST} DJANGO_DEBUG=1 .venv/bin/python manage.py backfill_invite_codes --dry-run
Press Ctrl-C to stop.

MSG
"$PY" manage.py runserver "127.0.0.1:${WEB_PORT}" --noreload
