# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make serve` runs from a virtualenv of its own with the runtime requirements only,
# as a production image would (no moto, pytest, Playwright or schemathesis).
# Both install only from the lock (pyproject.toml's pins, every package and file hash):
# requirements.txt (runtime) and requirements-dev.txt (runtime and tools); `make lock` writes them.
SERVE_VENV := .venv-serve
SERVE_STAMP := $(SERVE_VENV)/.installed

.PHONY: install lock run serve test lint bench mutants clean

# Everything for development: the runtime requirements and the tools.
install: $(STAMP)

$(STAMP): requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $(STAMP)

$(SERVE_STAMP): requirements.txt
	test -x $(SERVE_VENV)/bin/python || $(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements.txt
	touch $(SERVE_STAMP)

# After a change of pyproject.toml's dependencies: every other pin stays as locked unless the change needs
# another. The runtime lock is constrained by the full one, so both pin the same versions.
LOCK := UV_PYTHON_DOWNLOADS=never $(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --universal \
	--python-version 3.11 --custom-compile-command "make lock" --quiet
lock: install
	$(LOCK) --group pyproject.toml:dev -o requirements-dev.txt
	$(LOCK) -c requirements-dev.txt -o requirements.txt

run: install
	scripts/run_embedded.sh

# Production settings under gunicorn; needs DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS (docs/operations.md).
serve: $(SERVE_STAMP)
	PY=$(SERVE_VENV)/bin/python scripts/serve.sh

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 3

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) -m benchmarks

# A million spaces in DynamoDB Local, backfilled then audited (benchmarks/scale.py; docs/backfill.md); about 45 min
# here. Writes benchmarks/results/scale-*.json and .png. BENCH_SCALE_ARGS="--spaces 20000" for a quick run.
.PHONY: bench-scale
bench-scale: install java
	$(PY) -m benchmarks.scale $(BENCH_SCALE_ARGS)

# Each condition of each engine transaction removed in turn: the suite must fail on every one (not part of `make test`).
mutants: install
	$(PY) -m devtools.mutants

clean:
	rm -rf $(VENV) $(SERVE_VENV) .run staticfiles

# Browser tests (tests/test_*_browser.py) drive Debian's Chromium through
# Playwright; nothing ever downloads a browser. `make test` installs the
# package when it is missing (root, or sudo).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: chromium
test: chromium
chromium:
	test -x $(CHROMIUM) || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The suite again, against AWS's DynamoDB Local (Java) instead of moto: devtools/dynamodb_local.py fetches it
# on first use into ~/.cache/lifestyle-spaces (never into the repository: its licence forbids redistribution).
.PHONY: test-dynamodb-local java
test-dynamodb-local: install chromium java
	$(PY) -m devtools.dynamodb_local
	TEST_DYNAMODB=local $(PY) -m pytest -n 3
java:
	command -v java >/dev/null || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y default-jre-headless)
