# Two entry points, each doing its own set-up on a fresh machine:
#   make run    — install what running needs into .venv, start `taskops run` (SQLite by default)
#   make test   — install the test tools too, make sure PostgreSQL answers, run pytest
# and `make lint` (ruff, mypy, the layering contract), `make install` (all of it).
# Versions are pinned by constraints.txt; `make lock` regenerates it from pyproject.toml.
# PYTHON=/path/to/python3.X picks the interpreter (3.11 to 3.13) for a new .venv.

VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := $(CURDIR)/constraints.txt
# The build back-end, in pip's isolated build environment, is pinned by the same file.
PIP := PIP_CONSTRAINT=$(CONSTRAINTS) $(BIN)/python -m pip --disable-pip-version-check \
       --quiet install
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
            $$p -c '$(SUPPORTED)' 2>/dev/null && { command -v $$p; break; }; done)

.PHONY: run test lint install lock

# $(error) stops make with exactly one line, before any recipe line runs.
$(BIN)/python:
	$(if $(PYTHON),,$(error taskops needs Python 3.11, 3.12 or 3.13, and none of python3.13, \
	  python3.12, python3.11, python3 on PATH is one: install one, or name it, e.g. \
	  make $(or $(MAKECMDGOALS),run) PYTHON=/path/to/python3.12))
	$(if $(shell $(PYTHON) -c '$(SUPPORTED)' 2>/dev/null && echo ok),,$(error taskops needs \
	  Python 3.11, 3.12 or 3.13; PYTHON=$(PYTHON) is \
	  $(or $(shell $(PYTHON) -V 2>/dev/null),not a Python that runs)))
	$(PYTHON) -m venv $(VENV)
	$(PIP) pip

# One stamp per set of extras: `make run` never installs the test or lint tools.
$(VENV)/.run.stamp: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e .
	@touch $@

$(VENV)/.test.stamp: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[test]'
	@touch $@

$(VENV)/.lint.stamp: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[lint]'
	@touch $@

install: $(VENV)/.run.stamp $(VENV)/.test.stamp $(VENV)/.lint.stamp

run: $(VENV)/.run.stamp
	$(BIN)/taskops run $(ARGS)

# tests/postgres.py finds the test PostgreSQL, or starts the system's or a bundled one; if
# it cannot, make stops with its one line saying what is missing.
# TEST_JOBS pytest processes (pytest-xdist): the tests mostly wait on real timers, so three
# share two cores well; TEST_JOBS=0 runs them in this one process.
TEST_JOBS ?= 3
test: $(VENV)/.test.stamp
	$(eval problem := $(shell $(BIN)/python -m tests.postgres --problem))
	$(if $(problem),$(error $(problem)))
	$(BIN)/pytest -n $(TEST_JOBS) $(ARGS)

lint: $(VENV)/.lint.stamp
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

lock:
	.ci/lock
