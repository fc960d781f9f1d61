# A fresh machine needs only Python 3.11+: every target makes .venv and installs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/exo-bridge $(ARGS)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check router desktop tests bench docs packaging
	$(BIN)/mypy router

bench: install
	$(BIN)/python bench/router_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
