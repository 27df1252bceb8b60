# The two commands of README.md: `make run` (the demo shop) and `make test` (the test suite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The test database (pytest-django creates test_<name>) and the block of Redis databases (tests/resources.py):
# give a second suite on the same servers its own, e.g. TEST_DB_NAME=pharmacy_b TEST_REDIS_DB_OFFSET=8.
TEST_DB_NAME ?= pharmacy
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/$(TEST_DB_NAME)

.PHONY: run test venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

## Set up and run the demo shop at http://127.0.0.1:8000 (SQLite, localstripe, emails in var/emails/).
run: $(STAMP)
	bash scripts/run_demo.sh

## Set up and run the whole test suite (PostgreSQL at 127.0.0.1:5432 unless DATABASE_URL says otherwise).
test: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/python -m pytest $(PYTEST_ARGS)
