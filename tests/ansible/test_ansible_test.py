"""ansible-test sanity and units on the staged collection, as a collection maintainer runs them.

ansible-test runs each sanity tool from a virtual environment of its own under
~/.ansible/test/venv, installed from PyPI on first use. These tests run without
network, so those environments must be made beforehand (the prime step named in
the failure message below).
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
    ansible_test,
    seed_get_pip,
    tool_path,
)

pytestmark = pytest.mark.slow


def test_sanity_is_clean(staged_copy: Path, pythons: Dict[str, Path]) -> None:
    seed_get_pip()
    path = tool_path(pythons)
    primed = ansible_test(["sanity", "--local", "--prime-venvs"], staged_copy, path, timeout=600)
    if primed.returncode != 0:
        pytest.fail(
            "ansible-test's sanity environments are missing and cannot be downloaded here; "
            "run `{}` with network access first.\n{}".format(PRIME_COMMAND, primed.stdout[-3000:]),
            pytrace=False,
        )
    result = ansible_test(["sanity", "--local"], staged_copy, path, timeout=1800)
    assert result.returncode == 0, result.stdout[-20000:]
    for test in ("compile", "import"):
        ran = set(
            re.findall(r'Running sanity test "{}" on Python (3\.\d+)'.format(test), result.stdout)
        )
        assert ran >= set(TARGET_VERSIONS), (test, sorted(ran))
    for test in ("validate-modules", "pylint", "pep8", "ansible-doc", "yamllint"):
        assert 'Running sanity test "{}"'.format(test) in result.stdout, test


def test_units_pass(staged_copy: Path, pythons: Dict[str, Path]) -> None:
    version = "{}.{}".format(*sys.version_info[:2])
    result = ansible_test(
        ["units", "--local", "--python", version], staged_copy, tool_path(pythons), timeout=900
    )
    assert result.returncode == 0, result.stdout[-20000:]
    for context in ("modules", "module_utils", "controller"):
        assert "Unit test {} with Python {}".format(context, version) in result.stdout, context
    assert " failed" not in result.stdout
