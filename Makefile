# The two commands of the README: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_ADMIN_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/postgres

.PHONY: demo test install lint typecheck bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# Demo data in ./.demo-home (SQLite + log folder), then the dashboard on http://127.0.0.1:8501
demo: $(BIN)/.installed
	SHADOWTUTOR_HOME=$${SHADOWTUTOR_HOME:-$(CURDIR)/.demo-home} $(BIN)/shadowtutor demo

# The whole suite, PostgreSQL tests included (TEST_DATABASE_URL names a server where a
# throwaway database is created and dropped).
test: $(BIN)/.installed
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(PG_ADMIN_URL)} $(BIN)/python -m pytest

# Both run in .ci/run before the tests, and in pre-commit (.pre-commit-config.yaml).
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The library, with the settings of [tool.mypy] in pyproject.toml.
typecheck: $(BIN)/.installed
	$(BIN)/mypy
