# giftledger: `make run` serves the demo, `make test` runs the whole suite. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench audit clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# `demo` and `serve` each migrate first (no separate `migrate`: each command starts the embedded server).
run: install
	$(BIN)/giftledger demo --print
	$(BIN)/giftledger serve --host 127.0.0.1 --port 8000

# Debian's chromium drives the browser tests (a test tool's own browser download cannot work here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Two test processes at once (pytest-xdist), each with its own embedded PostgreSQL; a file's tests stay together.
test: install chromium lint
	$(BIN)/pytest -n 2 --dist loadfile

# The layers and their imports (pyproject.toml's [tool.importlinter] contracts), ruff and mypy.
lint: install
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

# Benchmarks against the PostgreSQL in TEST_DATABASE_URL (needs wrk and pgbench): `make bench ARGS="--cards 1000000"`.
bench: install
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	$(BIN)/python bench/run.py $(ARGS)

# Known vulnerabilities in the installed dependency set (needs PyPI's vulnerability service).
audit: install
	$(BIN)/pip-audit --skip-editable --strict --progress-spinner off

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
