# giftledger: `make run` serves the demo, `make test` runs the whole suite. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench audit clean chromium pgbouncer

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

# Debian's pgbouncer: tests/storage/test_pgbouncer.py runs giftledger behind it (transaction mode).
pgbouncer:
	@test -x /usr/sbin/pgbouncer || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer; }

# Three test processes at once (pytest-xdist; on 2 cores, as the tests wait on servers and subprocesses a third
# of the time), each with its own embedded PostgreSQL; a file's tests stay together. Four was slower here.
test: install chromium pgbouncer lint
	$(BIN)/pytest -n 3 --dist loadfile

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
