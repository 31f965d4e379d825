# `make run` and `make test` are all a newcomer needs; both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The dev tools (tests, linters, locust...) on top: `make run` installs only the service.
DEV_STAMP := $(VENV)/.installed-dev

.DEFAULT_GOAL := help
.PHONY: help .venv run test lint typecheck pytest bench clean

help:
	@echo "make run        start PostgreSQL, Redis, the API and 2 pollers (Ctrl-C stops)"
	@echo "make test       lint + typecheck + pytest"
	@echo "make lint       ruff (lint and format)"
	@echo "make typecheck  mypy --strict"
	@echo "make bench      every benchmark in loadtests/ and whether its target is met (FULL=1: full sizes)"
	@echo "make clean      remove .venv and .data"

.venv: $(DEV_STAMP)

# Rebuilt when pyproject.toml changes. A Debian python3 without venv support (python3-venv) leaves
# a pip-less .venv behind, so that case is detected, cleaned up and, as root, fixed with apt-get.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "error: Python >= 3.11 is required, but '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo 'not found')." >&2; \
	  echo "       Install Python 3.11+ and run e.g.: make PYTHON=python3.11 $(MAKECMDGOALS)" >&2; \
	  exit 1; }
	@if ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
	  rm -rf $(VENV); \
	  if ! $(PYTHON) -m venv $(VENV); then \
	    rm -rf $(VENV); \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "==> installing venv support with apt-get"; \
	      ver=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	      export DEBIAN_FRONTEND=noninteractive; \
	      apt-get update -qq && \
	      { apt-get install -y -qq python3-venv python$$ver-venv || apt-get install -y -qq python3-venv; } && \
	      $(PYTHON) -m venv $(VENV) || exit 1; \
	    else \
	      echo "error: '$(PYTHON) -m venv' failed. On Debian/Ubuntu install venv support first:" >&2; \
	      echo "       sudo apt-get install python3-venv" >&2; \
	      exit 1; \
	    fi; \
	  fi; \
	fi
	$(BIN)/pip install -U pip
	$(BIN)/pip install -e .
	@touch $@

$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install -e '.[dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/reminders up

test: lint typecheck pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP)
	$(BIN)/pytest

# FULL=1 adds the issue's full sizes (the 1M burst, the 10M-row table): allow about 20 minutes more.
bench: $(DEV_STAMP)
	$(BIN)/python -m loadtests.run_all $(if $(FULL),--full)

clean:
	rm -rf $(VENV) .data
