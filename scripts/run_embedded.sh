#!/usr/bin/env bash
# `make run`: the embedded DynamoDB, the table, demo data, and Django's development server.
#
# Every run starts from a fresh demo: the embedded DynamoDB keeps its data in
# memory, so the relational half (.run/demo.sqlite3: users, sessions, the admin's
# history) is recreated too, and both halves always describe the same spaces.
# Nothing is started or written when a port is taken. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

DYNAMODB_PORT="${DYNAMODB_PORT:-8001}"
WEB_PORT="${WEB_PORT:-8000}"
PY=.venv/bin/python

port_taken() {
  "$PY" -c "import socket,sys
s=socket.socket()
try: s.bind(('127.0.0.1', int(sys.argv[1])))
except OSError: sys.exit(0)
sys.exit(1)" "$1"
}
for pair in "DYNAMODB_PORT:$DYNAMODB_PORT" "WEB_PORT:$WEB_PORT"; do
  name="${pair%%:*}"; port="${pair#*:}"
  if port_taken "$port"; then
    echo "Port $port on 127.0.0.1 is already in use (another program listens there); nothing was started." >&2
    echo "Choose another one, e.g.: $name=$((port + 100)) make run" >&2
    exit 2
  fi
done

export DJANGO_DEBUG=1
export DYNAMODB_HOST="http://127.0.0.1:${DYNAMODB_PORT}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-embedded}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-embedded}"
mkdir -p .run
export DATABASE_URL="sqlite:///$(pwd)/.run/demo.sqlite3"
rm -f .run/demo.sqlite3
rm -rf .run/cache  # throttle counters and lockouts of the previous run
# The demo relaxes the per-user and per-address limits (settings.py's defaults stay production's); each can be set.
for limit in THROTTLE_JOIN_PAGE THROTTLE_INVITE_JOIN THROTTLE_INVITE_PREVIEW THROTTLE_SPACE_CREATE \
  THROTTLE_INVITE_REGENERATE; do export "$limit=${!limit:-1000/min}"; done
export LOGIN_FAILURES_PER_USERNAME="${LOGIN_FAILURES_PER_USERNAME:-100}"
export LOGIN_FAILURES_PER_ADDRESS="${LOGIN_FAILURES_PER_ADDRESS:-100}"

"$PY" manage.py run_embedded_dynamodb --port "$DYNAMODB_PORT" > .run/embedded-dynamodb.log 2>&1 &
MOTO_PID=$!
cleanup() { kill -INT "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ready means: the process we started is alive and answers (not whatever else listens there).
for _ in $(seq 1 100); do
  if ! kill -0 "$MOTO_PID" 2>/dev/null; then
    echo "The embedded DynamoDB did not start; its output (.run/embedded-dynamodb.log):" >&2
    cat .run/embedded-dynamodb.log >&2
    exit 1
  fi
  "$PY" -c "import urllib.request; urllib.request.urlopen('$DYNAMODB_HOST/moto-api/', timeout=1)" 2>/dev/null && break
  sleep 0.2
done

"$PY" manage.py create_dynamodb_table
"$PY" manage.py migrate --noinput -v 0
SEEDED="$("$PY" manage.py seed_demo)"
echo "$SEEDED" | sed '$d'
SPACE_ID="$(echo "$SEEDED" | tail -n 1 | sed 's/^walkthrough space: //')"
BASE="http://127.0.0.1:${WEB_PORT}"
TOKEN_OF="python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access\"])'"

cat <<MSG

Lifestyle Spaces is running on ${BASE}  (embedded DynamoDB on ${DYNAMODB_HOST}; fresh demo data every run)
Demo users: admin / admin, alice / alice-demo-pass, bob / bob-demo-pass
Demo limits, relaxed: ${THROTTLE_INVITE_JOIN} per user, ${THROTTLE_JOIN_PAGE} per address, a lockout after ${LOGIN_FAILURES_PER_USERNAME} failed sign-ins
  (production: 10/min, 5 failed sign-ins per username or 20 per address; THROTTLE_* and LOGIN_FAILURES_* set them)

A walk-through (copy and paste into another terminal):
  ALICE=\$(curl -s -X POST ${BASE}/api/auth/token/ -H 'Content-Type: application/json' -d '{"username":"alice","password":"alice-demo-pass"}' | ${TOKEN_OF})
  curl -s ${BASE}/api/spaces -H "Authorization: Bearer \$ALICE"; echo
  CODE=\$(curl -s -X POST ${BASE}/api/spaces/${SPACE_ID}/invite -H "Authorization: Bearer \$ALICE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["invite_code"])'); echo \$CODE
  BOB=\$(curl -s -X POST ${BASE}/api/auth/token/ -H 'Content-Type: application/json' -d '{"username":"bob","password":"bob-demo-pass"}' | ${TOKEN_OF})
  curl -s -X POST ${BASE}/api/spaces/join -H "Authorization: Bearer \$BOB" -H 'Content-Type: application/json' -d "{\"invite_code\":\"\$CODE\"}"; echo
  The join link:     ${BASE}/join/\$CODE   (sign in as admin / admin: Bob has just joined, the admin has not)
  The admin:         ${BASE}/admin/   (admin / admin)
  API docs:          ${BASE}/api/docs/
  Backfill preview:  DYNAMODB_HOST=${DYNAMODB_HOST} DJANGO_DEBUG=1 DATABASE_URL=${DATABASE_URL} .venv/bin/python manage.py backfill_invite_codes --dry-run
Press Ctrl-C to stop.

MSG
"$PY" manage.py runserver "127.0.0.1:${WEB_PORT}" --noreload
