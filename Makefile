# The two commands of the README: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_ADMIN_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/postgres
PORT ?= 8501
DEMO_ARGS ?=
DOCS_PORT ?= 8000

.PHONY: demo test install node-deps lint typecheck bench docs docs-build docs-generate

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $@

install: $(BIN)/.installed

# Demo data in ./.demo-home (SQLite + log folder), then the dashboard on http://127.0.0.1:$(PORT)
# (`make demo PORT=8502`; DEMO_ARGS='--pairs 5000 --days 30' for a smaller demo).
demo: $(BIN)/.installed
	SHADOWTUTOR_HOME=$${SHADOWTUTOR_HOME:-$(CURDIR)/.demo-home} $(BIN)/shadowtutor demo --port $(PORT) $(DEMO_ARGS)

# The whole suite, PostgreSQL tests included (TEST_DATABASE_URL names a server where a
# throwaway database is created and dropped). The tests mostly wait (model servers, timeouts,
# subprocesses, the browser), so TEST_WORKERS pytest-xdist workers run them side by side, one
# test file per worker at a time (module fixtures are built once). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 4
test: $(BIN)/.installed node-deps
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(PG_ADMIN_URL)} $(BIN)/python -m pytest \
		-n $(TEST_WORKERS) --dist loadfile

# The Node clients the tests drive (tests/node: the official `openai` package, pinned in its
# package-lock.json): installed once from the npm registry, then the tests run offline. Skipped
# (with a note) where Node is not installed; the tests that need it then skip too.
NODE_DIR := tests/node
node-deps: $(NODE_DIR)/node_modules/.package-lock.json
$(NODE_DIR)/node_modules/.package-lock.json: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.package-lock.json; \
	else echo "npm not found: the Node client tests will be skipped"; fi

# Both run in .ci/run before the tests, and in pre-commit (.pre-commit-config.yaml).
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The library, with the settings of [tool.mypy] in pyproject.toml.
typecheck: $(BIN)/.installed
	$(BIN)/mypy

# The docs site (mkdocs-material): served with live reload on http://127.0.0.1:$(DOCS_PORT)
docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

# What CI runs: a broken link, a missing page or anchor fails the build.
docs-build: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The pages made from the code: the CLI reference, and the settings and permissions tables.
docs-generate: $(BIN)/.installed
	$(BIN)/python -m shadowtutor.cli.reference --write docs
