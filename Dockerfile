# syntax=docker/dockerfile:1
# The one image of Lifestyle Spaces: the API by default (scripts/serve.sh: checks, collectstatic,
# gunicorn), and the operator commands, which the backfill Job runs in the same image
# (deploy/kubernetes/backfill-job.yaml). Runtime requirements only: requirements.txt, the runtime
# lock (every package pinned, every file's hash checked), no development tools (requirements-dev.txt).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=lifestyle_spaces.settings \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    GUNICORN_BIND=0.0.0.0:8000 \
    PY=python

WORKDIR /app

# The requirements first, so a change of code alone does not reinstall them.
COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements.txt

COPY . .

# An unprivileged user; it may write only the static files collected at start.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home app \
    && mkdir -p /app/staticfiles \
    && chown app:app /app/staticfiles
USER 10001:10001

EXPOSE 8000
CMD ["scripts/serve.sh"]
