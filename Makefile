# fathom: `make run` sets everything up and answers a question over the bundled docs;
# `make test` installs the test tools and runs lint, types and the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_HOME ?= .fathom-demo
QUESTION ?= How does fathom rank search results?

.PHONY: setup dev run test test-fast lint typecheck pytest clean bench-peers

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned, so pip takes the CPU build instead of a multi-GB CUDA one.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

dev: $(VENV)/.installed-dev

# The guides only: docs/img holds screenshots, which fathom reports as unsupported files.
run: setup
	FATHOM_HOME=$(DEMO_HOME) $(BIN)/fathom ingest docs/*.md
	FATHOM_HOME=$(DEMO_HOME) $(BIN)/fathom ask "$(QUESTION)"

lint: dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: dev
	$(BIN)/mypy

pytest: dev
	$(BIN)/pytest

test: lint typecheck pytest

# The edit loop: every test not marked slow (no real-model ingests, no servers that load it).
test-fast: dev
	$(BIN)/pytest -q -m "not slow"

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache

# Peers side by side (bench/peers.py). The peers' libraries go into their own venv,
# never into fathom's dependencies; torch is pinned first for the same reason as above.
BENCH_VENV ?= .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
PEERS_ARGS ?=

$(BENCH_VENV)/.installed: pyproject.toml bench/requirements-peers.txt
	test -x $(BENCH_BIN)/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/pip install --quiet --upgrade pip
	$(BENCH_BIN)/pip install --quiet torch==2.13.0
	$(BENCH_BIN)/pip install --quiet -e .
	$(BENCH_BIN)/pip install --quiet -r bench/requirements-peers.txt
	touch $@

# e.g. make bench-peers PEERS_ARGS="--limit-queries 50 --systems fathom,bm25s"
bench-peers: $(BENCH_VENV)/.installed
	nice -n 10 $(BENCH_BIN)/python -m bench.peers $(PEERS_ARGS)
