# A fresh machine needs only Python 3.11+: every target makes .venv and installs into it, from the
# hashed lock (requirements/dev.lock: the app, the tests, the linters and PyInstaller, pinned for
# every supported Python). `make lock` regenerates it from pyproject.toml (see the README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet --custom-compile-command "make lock"

.PHONY: install run test lint bench soak lock lock-check package package-check clean

$(BIN)/.installed: pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/exo-bridge $(ARGS)

# Four workers on two cores: most tests wait on sockets, subprocesses and timers, not the CPU
# (950 tests: 306 s in one process, 121-124 s on four). WORKERS=0 runs them in this process.
WORKERS ?= 4
test: install
	$(BIN)/python -m pytest -q -n $(WORKERS)

lint: install
	$(BIN)/ruff check router desktop tests bench docs packaging
	$(BIN)/mypy router desktop

bench: install
	$(BIN)/python bench/router_overhead.py

# The tray app as a user runs it, for thousands of requests and a day of probes (issue 11).
soak: install
	$(BIN)/python -m bench.tray_soak

# The lock: every dependency pinned with its hashes; app.lock is the runtime subset (same pins).
UV := $(abspath $(BIN))/uv
UPGRADE ?=  # `make lock UPGRADE=--upgrade`: the newest releases the ranges allow
LOCK = $(UV) pip compile pyproject.toml --extra dev --extra package $(LOCK_FLAGS) $(UPGRADE) \
	-o requirements/dev.lock && $(UV) pip compile pyproject.toml $(LOCK_FLAGS) \
	-c requirements/dev.lock -o requirements/app.lock
lock: install
	$(LOCK)

# Fails when pyproject.toml asks for something the lock does not pin (the pins it has are kept).
lock-check: install
	@tmp=$$(mktemp -d) && mkdir $$tmp/requirements && cp pyproject.toml $$tmp/ && \
	cp requirements/*.lock $$tmp/requirements/ && (cd $$tmp && $(LOCK)) && \
	diff -u requirements/dev.lock $$tmp/requirements/dev.lock && \
	diff -u requirements/app.lock $$tmp/requirements/app.lock && rm -r $$tmp && \
	echo "the lock is in sync with pyproject.toml"

# A one-folder app in build/dist/exo-bridge (PyInstaller, pinned in the lock), then its own
# `status --json`.
package: install
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
