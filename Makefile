# The two commands of the README: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_ADMIN_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/postgres

.PHONY: demo test install lint bench

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
# throwaway database is created and dropped). The tests mostly wait (model servers, timeouts,
# subprocesses, the browser), so TEST_WORKERS pytest-xdist workers run them side by side, one
# test file per worker at a time (module fixtures are built once). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 4
test: $(BIN)/.installed
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(PG_ADMIN_URL)} $(BIN)/python -m pytest \
		-n $(TEST_WORKERS) --dist loadfile

lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
