"""ansible-test sanity and units on the staged collection, as a collection maintainer runs them.

Once per ansible-core of the version matrix (``ansible_core``, see
conftest.py): every minor meta/runtime.yml admits. ansible-test runs each
sanity tool from a virtual environment of its own under ~/.ansible/test/venv,
installed from PyPI on first use. These tests run without network, so those
environments must be made beforehand (the prime step named in the failure
message below).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Dict

import pytest
from imds_ansible_env import (
    PRIME_COMMAND,
    TARGET_VERSIONS,
    AnsibleCore,
    ansible_test,
    ansible_test_pythons,
    seed_get_pip,
)

pytestmark = pytest.mark.slow


def test_sanity_is_clean(
    ansible_core: AnsibleCore, staged_copy: Path, pythons: Dict[str, Path]
) -> None:
    seed_get_pip(ansible_core)
    primed = ansible_test(
        ansible_core, ["sanity", "--local", "--prime-venvs"], staged_copy, pythons, timeout=600
    )
    if primed.returncode != 0:
        pytest.fail(
            "ansible-test's sanity environments are missing and cannot be downloaded here; "
            "run `{}` with network access first.\n{}".format(PRIME_COMMAND, primed.stdout[-3000:]),
            pytrace=False,
        )
    result = ansible_test(ansible_core, ["sanity", "--local"], staged_copy, pythons, timeout=1800)
    assert result.returncode == 0, result.stdout[-20000:]
    # Every target Python of ours that this ansible-core supports on managed hosts.
    wanted = set(TARGET_VERSIONS) & set(ansible_test_pythons(ansible_core))
    assert "3.8" in wanted and "3.12" in wanted, wanted
    for test in ("compile", "import"):
        ran = set(
            re.findall(r'Running sanity test "{}" on Python (3\.\d+)'.format(test), result.stdout)
        )
        assert ran >= wanted, (test, sorted(ran))
    for test in ("validate-modules", "pylint", "pep8", "ansible-doc", "yamllint"):
        assert 'Running sanity test "{}"'.format(test) in result.stdout, test


def test_units_pass(ansible_core: AnsibleCore, staged_copy: Path, pythons: Dict[str, Path]) -> None:
    version = "{}.{}".format(*sys.version_info[:2])
    result = ansible_test(
        ansible_core, ["units", "--local", "--python", version], staged_copy, pythons, timeout=900
    )
    assert result.returncode == 0, result.stdout[-20000:]
    for context in ("modules", "module_utils", "controller"):
        assert "Unit test {} with Python {}".format(context, version) in result.stdout, context
    assert " failed" not in result.stdout
