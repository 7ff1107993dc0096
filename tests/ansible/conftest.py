"""Fixtures for the imds.ec2 collection tests: the built tarball, installed as users install it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import pytest
from imds_ansible_env import (
    VENV_BIN,
    AnsibleCore,
    Built,
    MissingTool,
    Run,
    ansible_cores,
    galaxy_install,
    load_build,
    read_json,
    require,
    target_pythons,
    tool_path,
)

# An ec2_metadata_core that fails on import, first on PYTHONPATH of every
# Ansible process: the collection must run on its own shipped copy.
POISON = 'raise ImportError("imds.ec2 must not import ec2_metadata_core: it ships its own copy")\n'


@pytest.fixture(scope="session")
def pythons() -> Dict[str, Path]:
    """Every target Python; a missing one fails the tests that need it, with what to install."""
    try:
        return target_pythons()
    except MissingTool as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session", params=ansible_cores(), ids=lambda core: core.name)
def ansible_core(request: pytest.FixtureRequest) -> AnsibleCore:
    """Each ansible-core of the version matrix, oldest first; a missing venv fails the test."""
    try:
        return require(request.param)
    except MissingTool as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The collection built by ansible_collection/build.py (what `make collection` runs)."""
    root = tmp_path_factory.mktemp("collection")
    build = load_build()
    stage = root / "stage" / "ansible_collections" / "imds" / "ec2"
    tarball = build.build(stage, root / "dist")
    return Built(stage, tarball)


@pytest.fixture
def staged_copy(built: Built, tmp_path: Path) -> Path:
    """A private copy of the staged tree, for tools that write into it (ansible-test, molecule)."""
    copy = tmp_path / "ansible_collections" / "imds" / "ec2"
    shutil.copytree(str(built.stage), str(copy))
    return copy


@pytest.fixture(scope="session")
def tarball_members(built: Built) -> Dict[str, bytes]:
    with tarfile.open(str(built.tarball)) as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }


@pytest.fixture(scope="session")
def collections_path(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections path the tarball was installed into with ansible-galaxy."""
    path = tmp_path_factory.mktemp("installed")
    subprocess.run(
        galaxy_install(VENV_BIN, built.tarball, path),
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=120,
    )
    return path


@pytest.fixture(scope="session")
def poisoned_pythonpath(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("poison")
    (path / "ec2_metadata_core").mkdir()
    (path / "ec2_metadata_core" / "__init__.py").write_text(POISON)
    return path


@pytest.fixture
def ansible_env(
    collections_path: Path,
    poisoned_pythonpath: Path,
    pythons: Dict[str, Path],
    tmp_path: Path,
) -> Dict[str, str]:
    """Environment for ansible-* commands: the installed collection only, temp dirs in tmp_path.

    Read at call time, so the AWS variables the imds_simulator fixture sets are in it.
    """
    env = dict(os.environ)
    env.update(
        PATH=tool_path(pythons),
        PYTHONPATH=str(poisoned_pythonpath),
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_LOCALHOST_WARNING="false",
    )
    return env


@pytest.fixture
def run_ansible(ansible_env: Dict[str, str], tmp_path: Path) -> Callable[..., Run]:
    """``run_ansible("ansible-playbook", args..., env={...})``: exit status and output.

    With ``core=`` an ansible-core of the matrix, its tools run (first on PATH too).
    """

    def run(
        tool: str,
        *args: str,
        env: Optional[Dict[str, str]] = None,
        core: Optional[AnsibleCore] = None,
    ) -> Run:
        full_env = dict(ansible_env)
        full_env.update(env or {})
        if core is not None:
            full_env["PATH"] = core.bin.as_posix() + os.pathsep + full_env["PATH"]
        result = subprocess.run(
            [str((core.bin if core else VENV_BIN) / tool), *args],
            cwd=str(tmp_path),
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            check=False,
        )
        return Run(result.returncode, result.stdout)

    return run


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write(name, text)``: a file in tmp_path."""

    def make(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


@pytest.fixture
def dumped(tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """``dumped(name)``: a JSON file a playbook wrote into tmp_path/dump."""
    (tmp_path / "dump").mkdir()
    yield lambda name: read_json(tmp_path / "dump" / name)
