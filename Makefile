# Quick start: `make demo`, then `make test`. Everything runs from .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests run in a network namespace with only loopback when the machine
# allows it (root, or unprivileged user namespaces): nothing can leave.
ISOLATE := $(shell unshare -rn true 2>/dev/null && echo 'unshare -rn sh -c "ip link set lo up 2>/dev/null; exec \"\$$0\" \"\$$@\""' || (unshare -n true 2>/dev/null && echo 'unshare -n sh -c "ip link set lo up; exec \"\$$0\" \"\$$@\""'))

.PHONY: venv demo test lint typecheck ansible-matrix sanity-envs collection bench lock clean

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

# The collection is tested with every ansible-core minor meta/runtime.yml
# admits: the newest from .venv/, each older one from a venv of its own made
# from requirements/ansible-X.Y.txt (tests/ansible/test_ansible_versions.py).
ANSIBLE_MATRIX := $(patsubst requirements/ansible-%.txt,%,$(wildcard requirements/ansible-*.txt))

ansible-matrix: $(ANSIBLE_MATRIX:%=.venv-ansible-%/.installed)

.venv-ansible-%/.installed: requirements/ansible-%.txt pyproject.toml
	test -x .venv-ansible-$*/bin/python || $(PYTHON) -m venv .venv-ansible-$*
	.venv-ansible-$*/bin/python -m pip install -q --disable-pip-version-check -r $<
	.venv-ansible-$*/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# ansible-test installs each sanity tool into its own venv (~/.ansible/test/venv),
# for each ansible-core of the matrix: made here, with the network, before the
# tests run without it.
sanity-envs: $(STAMP) ansible-matrix
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python tests/ansible/imds_ansible_env.py prime-sanity

test: $(STAMP) lint typecheck ansible-matrix sanity-envs
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
