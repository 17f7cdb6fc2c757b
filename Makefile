# The two commands a newcomer needs (each does all of its own set-up on a fresh machine):
#   make demo   set up, then run the main job on the bundled demo site and search it
#   make test   set up, then run the whole test suite (it starts its own Elasticsearch node)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.newsmon-installed

.PHONY: setup demo test lint airflow clean

# ensure_built is a no-op when the jars match the launcher sources (it keeps a digest stamp).
setup: $(STAMP)
	$(BIN)/python -c "from newsmon.index.localnode.build import ensure_built; ensure_built(print)"

$(STAMP): pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,airflow]'
	@touch $@

demo: setup
	$(BIN)/newsmon run --demo
	$(BIN)/newsmon search 수출통제

# Lint first (style, then the floors between packages), then the whole suite. Any non-zero
# pytest exit fails, 5 ("no tests collected") included: it means a broken collection.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

clean:
	rm -rf $(VENV) var index/localnode/target
