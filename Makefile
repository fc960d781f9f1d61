# A fresh machine needs only Python 3.11+: every target makes .venv and installs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench package package-check clean

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

# A one-folder app in build/dist/exo-bridge (PyInstaller), then its own `status --json`.
package: install
	$(BIN)/python -m pip install --quiet 'pyinstaller>=6'
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath build/dist --workpath build/work \
		packaging/exo-bridge.spec

package-check:
	EXO_BRIDGE_CONFIG=build/no-config.toml EXO_BRIDGE_DATA_DIR=build/package-check \
		build/dist/exo-bridge/exo-bridge status --json | $(BIN)/python -c \
		'import json, sys; ids = [p["id"] for p in json.load(sys.stdin)["providers"]]; \
		assert ids == ["exo", "openrouter", "huggingface"], ids; print("frozen app OK:", ids)'
	PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring \
		build/dist/exo-bridge/exo-bridge --keychain-helper openrouter | $(BIN)/python -c \
		'import json, sys; answer = json.load(sys.stdin); assert "no usable OS keychain" in \
		answer["error"], answer; print("frozen keychain helper OK")'

clean:
	rm -rf $(VENV) build *.egg-info
