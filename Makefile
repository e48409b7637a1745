# `make run` installs capex into .venv and serves it on http://127.0.0.1:8000 (SQLite file
# capex.db, with DEMO demo volunteers loaded when the database is empty; DEMO=0 for none).
# `make test` installs capex with its test and bench tools and runs the whole test suite.
# `make schemathesis` probes a live `capex serve` against its own OpenAPI document, on SQLite
# and PostgreSQL (scripts/schemathesis; a few minutes).
# `make load` and `make faults` install the bench extra (locust) and run bench/load.py and
# bench/faults.py with their defaults (100k volunteers, 16 clients, 60 s; see bench/README.md).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= 300
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: run test schemathesis lint bench load faults clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

$(BIN)/.installed-bench: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/capex seed-if-empty --volunteers $(DEMO)
	$(BIN)/capex serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

# The tests include bench/load.py at a tiny scale, so they install the bench extra (locust).
test: $(BIN)/.installed-bench
	scripts/ensure-postgres
	scripts/ensure-chromium
	scripts/ensure-axe
	$(BIN)/python -m pytest

schemathesis: $(BIN)/.installed
	scripts/ensure-postgres
	$(BIN)/python scripts/schemathesis

lint: $(BIN)/.installed
	$(BIN)/ruff check capex tests bench alembic
	$(BIN)/ruff format --check capex tests bench alembic
	$(BIN)/mypy --strict capex
	$(BIN)/lint-imports --no-cache

bench: $(BIN)/.installed
	$(BIN)/python bench/directory.py

load: $(BIN)/.installed-bench
	scripts/ensure-postgres
	$(BIN)/python bench/load.py

faults: $(BIN)/.installed-bench
	scripts/ensure-postgres
	$(BIN)/python bench/faults.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
