#!/usr/bin/env bash
# `make serve`: the app under gunicorn with production settings (docs/operations.md).
# Needs at least DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS; DynamoDB is real AWS
# unless DYNAMODB_HOST points elsewhere. Run `manage.py migrate` as a release step first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"

export DJANGO_DEBUG=0
export DJANGO_SETTINGS_MODULE=lifestyle_spaces.settings
if [[ -z "${DJANGO_SECRET_KEY:-}" ]]; then
  echo "DJANGO_SECRET_KEY is not set. Generate one with:" >&2
  echo "  $PY -c 'import secrets; print(secrets.token_urlsafe(64))'" >&2
  exit 2
fi
if [[ -z "${DJANGO_ALLOWED_HOSTS:-}" ]]; then
  echo "DJANGO_ALLOWED_HOSTS is not set (comma-separated host names the app answers to)." >&2
  exit 2
fi

# Deployment warnings are printed; only errors stop the start.
"$PY" manage.py check --deploy --fail-level ERROR
# The admin's CSS and JS, hashed and compressed for WhiteNoise.
"$PY" manage.py collectstatic --noinput -v 0
exec "$PY" -m gunicorn -c lifestyle_spaces/gunicorn.conf.py
