# Quick start: `make demo`, then `make test`. Everything runs from .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IMPORTER := $(VENV)/importer
# Tests run in a network namespace with only loopback when the machine
# allows it (root, or unprivileged user namespaces): nothing can leave.
ISOLATE := $(shell unshare -rn true 2>/dev/null && echo 'unshare -rn sh -c "ip link set lo up 2>/dev/null; exec \"\$$0\" \"\$$@\""' || (unshare -n true 2>/dev/null && echo 'unshare -n sh -c "ip link set lo up; exec \"\$$0\" \"\$$@\""'))

.PHONY: venv demo test lint typecheck sanity-envs importer-env collection dists bench lock clean

venv: $(STAMP)

$(STAMP): pyproject.toml packaging/saltext/pyproject.toml requirements/dev.txt requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e . -e packaging/saltext
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

# galaxy-importer, which the suite runs on the collection tarball, pins attrs<24
# (salt needs >=26): a venv of its own, made here with the network.
importer-env: $(IMPORTER)/.installed

$(IMPORTER)/.installed: requirements/importer.txt
	test -x $(IMPORTER)/bin/python || $(PYTHON) -m venv $(IMPORTER)
	$(IMPORTER)/bin/python -m pip install -q --disable-pip-version-check -r requirements/importer.txt
	touch $@

test: $(STAMP) lint typecheck sanity-envs importer-env
	PATH="$(CURDIR)/$(BIN):$$PATH" $(ISOLATE) $(BIN)/python -m pytest $(PYTEST_ARGS)

collection: $(STAMP)
	$(BIN)/python ansible_collection/build.py

# The two Python distributions (sdist and wheel each) into dist/:
# ec2-metadata-core and saltext.imds-ec2.
dists: $(STAMP)
	$(BIN)/python -m build --no-isolation -o dist .
	$(BIN)/python -m build --no-isolation -o dist packaging/saltext

bench: $(STAMP)
	$(BIN)/python benchmarks/setup_peers.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(ISOLATE) $(BIN)/python benchmarks/run.py $(BENCH_ARGS)

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^ec2-metadata-core' > requirements/constraints.txt

clean:
	rm -rf build dist .mypy_cache .ruff_cache packaging/saltext/build packaging/saltext/src/*.egg-info
