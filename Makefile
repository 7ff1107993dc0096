# Quick start: `make demo`, then `make test`. Everything runs from .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests run in a network namespace with only loopback when the machine
# allows it (root, or unprivileged user namespaces): nothing can leave.
# Root gets a plain network namespace, keeping every uid (tests give a
# directory to another user); others a user namespace that maps only them.
ISOLATE := $(shell unshare -n true 2>/dev/null && echo 'unshare -n sh -c "ip link set lo up; exec \"\$$0\" \"\$$@\""' || (unshare -rn true 2>/dev/null && echo 'unshare -rn sh -c "ip link set lo up 2>/dev/null; exec \"\$$0\" \"\$$@\""'))

.PHONY: venv demo test lint typecheck sanity-envs collection bench lock clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/dev.txt requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(ISOLATE) $(BIN)/python demo/run.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check ec2_metadata_core salt_grains tests

typecheck: $(STAMP)
	$(BIN)/mypy

# ansible-test installs each sanity tool into its own venv (~/.ansible/test/venv):
# made here, with the network, before the tests run without it.
sanity-envs: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python tests/ansible/imds_ansible_env.py prime-sanity

test: $(STAMP) lint typecheck sanity-envs
	PATH="$(CURDIR)/$(BIN):$$PATH" $(ISOLATE) $(BIN)/python -m pytest $(PYTEST_ARGS)

collection: $(STAMP)
	$(BIN)/python ansible_collection/build.py

bench: $(STAMP)
	$(BIN)/python benchmarks/setup_peers.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(ISOLATE) $(BIN)/python benchmarks/run.py $(BENCH_ARGS)

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^ec2-metadata-core' > requirements/constraints.txt

clean:
	rm -rf build dist .mypy_cache .ruff_cache
