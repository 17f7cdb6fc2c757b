# The two commands a newcomer needs (each does all of its own set-up on a fresh machine):
#   make demo   set up, then run the main job on the bundled demo site and search it
#   make test   set up, then run the whole test suite (it starts its own Elasticsearch node)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.newsmon-installed
ES_STAMP := index/localnode/target/.built

.PHONY: setup demo test lint airflow clean

setup: $(STAMP) $(ES_STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

# Elasticsearch server, transport-netty4 and Lucene jars from Maven Central, plus our launcher.
$(ES_STAMP): $(STAMP) index/localnode/pom.xml $(shell find index/localnode/src -type f 2>/dev/null)
	$(BIN)/python -c "from newsmon.esnode import ensure_built; ensure_built(print)"
	@touch $@

demo: setup
	$(BIN)/newsmon run --demo
	$(BIN)/newsmon search 수출통제

# pytest exits 5 when it collected no tests; that is not a failure of the suite.
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var index/localnode/target
