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

.PHONY: venv demo test lint typecheck sanity-envs salt-envs collection bench lock clean

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

# The Salt extension under every Salt minor it declares (salt_grains/README.md,
# "Tested with"): a venv per minor, Salt's whole tree pinned in
# requirements/salt-NNNN.txt, the package installed editable; 3008 is .venv.
# tests/salt/test_salt_versions.py drives each venv's salt-call and beacon
# (under make test it fails when one is missing).
SALT_MATRIX := $(patsubst requirements/salt-%.txt,%,$(wildcard requirements/salt-*.txt))
# Salt 3006's onedir packages run Python 3.10, and so does its venv.
SALT_PYTHON_3006 ?= $(firstword $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.10.*/bin/python3.10) python3.10)
SALT_PYTHON_3007 ?= $(PYTHON)

salt-envs: $(foreach v,$(SALT_MATRIX),.venv-salt-$(v)/.installed)

.venv-salt-%/.installed: requirements/salt-%.txt pyproject.toml
	test -x .venv-salt-$*/bin/python || $(SALT_PYTHON_$*) -m venv .venv-salt-$*
	.venv-salt-$*/bin/python -m pip install -q --disable-pip-version-check -r requirements/salt-$*.txt
	.venv-salt-$*/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

test: $(STAMP) lint typecheck sanity-envs salt-envs
	PATH="$(CURDIR)/$(BIN):$$PATH" SALT_MATRIX_REQUIRED=1 $(ISOLATE) $(BIN)/python -m pytest $(PYTEST_ARGS)

collection: $(STAMP)
	$(BIN)/python ansible_collection/build.py

bench: $(STAMP)
	$(BIN)/python benchmarks/setup_peers.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(ISOLATE) $(BIN)/python benchmarks/run.py $(BENCH_ARGS)

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^ec2-metadata-core' > requirements/constraints.txt

clean:
	rm -rf build dist .mypy_cache .ruff_cache
