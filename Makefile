# Quick start: `make demo`, then `make test`. Everything runs from .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IMPORTER := $(VENV)/importer
# Tests run in a network namespace with only loopback when the machine
# allows it (root, or unprivileged user namespaces): nothing can leave.
# Root gets a plain network namespace, keeping every uid (tests give a
# directory to another user); others a user namespace that maps only them.
ISOLATE := $(shell unshare -n true 2>/dev/null && echo 'unshare -n sh -c "ip link set lo up; exec \"\$$0\" \"\$$@\""' || (unshare -rn true 2>/dev/null && echo 'unshare -rn sh -c "ip link set lo up 2>/dev/null; exec \"\$$0\" \"\$$@\""'))

.PHONY: venv demo test lint typecheck ansible-matrix sanity-envs salt-envs importer-env collection dists bench lock clean

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

# The collection is tested with every ansible-core minor meta/runtime.yml
# admits: the newest from .venv/, each older one from a venv of its own made
# from requirements/ansible-X.Y.txt. Sanity, units and the hostile-tag plays
# run under each (tests/ansible/test_ansible_test.py, test_ansible_trust.py).
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

# galaxy-importer, which the suite runs on the collection tarball, pins attrs<24
# (salt needs >=26): a venv of its own, made here with the network.
importer-env: $(IMPORTER)/.installed

$(IMPORTER)/.installed: requirements/importer.txt
	test -x $(IMPORTER)/bin/python || $(PYTHON) -m venv $(IMPORTER)
	$(IMPORTER)/bin/python -m pip install -q --disable-pip-version-check -r requirements/importer.txt
	touch $@

# The Salt extension under every Salt minor it declares (salt_grains/README.md,
# "Tested with"): a venv per minor, Salt's whole tree pinned in
# requirements/salt-NNNN.txt, both packages installed editable; 3008 is .venv.
# tests/salt/test_salt_versions.py drives each venv's salt-call and beacon
# (under make test it fails when one is missing).
SALT_MATRIX := $(patsubst requirements/salt-%.txt,%,$(wildcard requirements/salt-*.txt))
# Salt 3006's onedir packages run Python 3.10, and so does its venv.
SALT_PYTHON_3006 ?= $(firstword $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.10.*/bin/python3.10) python3.10)
SALT_PYTHON_3007 ?= $(PYTHON)

salt-envs: $(foreach v,$(SALT_MATRIX),.venv-salt-$(v)/.installed)

.venv-salt-%/.installed: requirements/salt-%.txt pyproject.toml packaging/saltext/pyproject.toml
	test -x .venv-salt-$*/bin/python || $(SALT_PYTHON_$*) -m venv .venv-salt-$*
	.venv-salt-$*/bin/python -m pip install -q --disable-pip-version-check -r requirements/salt-$*.txt
	.venv-salt-$*/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . -e packaging/saltext
	touch $@

test: $(STAMP) lint typecheck ansible-matrix sanity-envs salt-envs importer-env
	PATH="$(CURDIR)/$(BIN):$$PATH" SALT_MATRIX_REQUIRED=1 $(ISOLATE) $(BIN)/python -m pytest $(PYTEST_ARGS)

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
