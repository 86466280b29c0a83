# The two commands a newcomer needs:  make run   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 6379
DIR    ?= ./data

.PHONY: run test bench install dev clean check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Runtime install: the server has no dependencies at all.
install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

# Test tools: pytest, pytest-asyncio, redis-py, hypothesis, the client libraries
# tests/test_libraries*.py run (+ Debian's redis tools if root). arq goes in
# without its dependencies: arq 0.28 pins redis-py<6 (it runs on 8), which would
# take the whole suite back to redis-py 5; its other dependency, click, comes
# with celery.
dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps 'arq>=0.28,<0.29'
	./scripts/install-redis-tools.sh

## Start the server in the foreground on 127.0.0.1:$(PORT), data in $(DIR).
run: install
	$(BIN)/kvserver --port $(PORT) --dir $(DIR)

## Set up and run the whole test suite (the command .ci/run calls).
test: dev
	$(BIN)/python -m pytest -q

## Side-by-side benchmark against redis-server (writes bench/results/latest.md).
bench: dev
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench

## Verify a data directory (like redis-check-aof).
check: install
	$(BIN)/kvserver check $(DIR)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
