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
from typing import Dict, List

import pytest
import yaml
from imds_ansible_env import (
    PRIME_COMMAND,
    REPO,
    TARGET_VERSIONS,
    AnsibleCore,
    ansible_cores,
    ansible_test,
    ansible_test_pythons,
    seed_get_pip,
)

pytestmark = pytest.mark.slow

RUNTIME = REPO / "ansible_collection" / "meta" / "runtime.yml"


def minors(first: str, last: str) -> List[str]:
    """Every ansible-core minor from ``first`` to ``last`` (both "2.N")."""
    major, low = (int(part) for part in first.split("."))
    high = int(last.split(".")[1])
    return ["{}.{}".format(major, minor) for minor in range(low, high + 1)]


def test_the_matrix_is_every_minor_requires_ansible_admits() -> None:
    """Every version we declare, we test: from the lower bound to the newest there is."""
    declared = yaml.safe_load(RUNTIME.read_text())["requires_ansible"]
    match = re.fullmatch(r">=(\d+\.\d+)\.0", declared)
    assert match, "requires_ansible {!r} is not a plain lower bound".format(declared)
    tested = [core.minor for core in ansible_cores()]
    assert tested == minors(match.group(1), tested[-1]), (declared, tested)


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
