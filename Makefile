# Two commands set everything up on a fresh machine: `make run` and `make test`.
# .venv's interpreter: the operating system's CPython (3.11 or newer, with venv) where
# there is one, else the python3 on PATH. Debian's is built with profile-guided and
# link-time optimisation and libpython linked in, pyenv's default build with neither: a
# renewal takes about 11 % fewer instructions on Debian's (README, Throughput). Choose
# another with `make PYTHON=/path/to/python3` (after `rm -r .venv`).
SYSTEM_PYTHON := /usr/bin/python3
PYTHON ?= $(shell $(SYSTEM_PYTHON) -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $(SYSTEM_PYTHON) || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean chromium screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/prorata setup
	$(BIN)/prorata serve --host 127.0.0.1 --port 8000

# The portal's browser tests drive Debian's Chromium (no browser download).
chromium:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# The suite on TEST_WORKERS processes (pytest-xdist; each test has its own SQLite file or
# PostgreSQL schema); `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

screenshots: $(STAMP) chromium
	$(BIN)/python docs/screenshots/make.py

bench: $(STAMP)
	$(BIN)/python bench/quote.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
