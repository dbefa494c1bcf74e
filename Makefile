# Every command a reviewer runs. Each target does its own set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps test lint typecheck check rotate bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

system-deps:
	scripts/install-system-deps

setup: system-deps $(STAMP)

## The tests: unit tests and real-database tests (servers started by the suite).
test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

check: lint typecheck test

## The main job: a real rotation on a throwaway PostgreSQL and a local Secrets Manager.
rotate: setup
	$(BIN)/python -m devtools.rotate $(ARGS)

bench: setup
	$(BIN)/python -m devtools.bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
