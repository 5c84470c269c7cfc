# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make serve` runs from a virtualenv of its own with the runtime requirements only,
# as a production image would (no moto, pytest, Playwright or schemathesis).
SERVE_VENV := .venv-serve
SERVE_STAMP := $(SERVE_VENV)/.installed

.PHONY: install run serve test lint bench clean

# Everything for development: the runtime requirements and the tools (requirements-dev.txt).
install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(SERVE_STAMP): requirements.txt
	test -x $(SERVE_VENV)/bin/python || $(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install --quiet -r requirements.txt
	touch $(SERVE_STAMP)

run: install
	scripts/run_embedded.sh

# Production settings under gunicorn; needs DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS (docs/operations.md).
serve: $(SERVE_STAMP)
	PY=$(SERVE_VENV)/bin/python scripts/serve.sh

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n 3

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(SERVE_VENV) .run staticfiles

# Browser tests (tests/test_*_browser.py) drive Debian's Chromium through
# Playwright; nothing ever downloads a browser. `make test` installs the
# package when it is missing (root, or sudo).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: chromium redis-server
test: chromium redis-server
chromium:
	test -x $(CHROMIUM) || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
# Shared throttles and lockouts are tested against a real Redis (tests/test_shared_cache.py).
redis-server:
	command -v redis-server >/dev/null || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server)
