"""Interpreters, paths and environments for the imds.ec2 collection tests.

The collection is tested with every ansible-core minor version
``meta/runtime.yml`` admits: the newest from ``.venv/`` (requirements/dev.txt
pins it), each older one from ``.venv-ansible-X.Y/``, which ``make
ansible-matrix`` makes from ``requirements/ansible-X.Y.txt``.

Also a command, run with network access before the tests (they run in a
loopback-only namespace): ``.venv/bin/python tests/ansible/imds_ansible_env.py
prime-sanity`` creates, for each of those ansible-cores, the virtual
environments ansible-test's sanity tests install their pinned tools into
(under ``~/.ansible/test/venv``), so the sanity test finds them ready.
"""

from __future__ import annotations

import argparse
import ast
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "ansible_collection" / "build.py"
VENV_BIN = Path(sys.executable).parent
# Every target Python ansible-core 2.19 supports that the client must run on.
TARGET_VERSIONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
PRIME_COMMAND = ".venv/bin/python tests/ansible/imds_ansible_env.py prime-sanity"
MATRIX_COMMAND = "make ansible-matrix"
# ansible-test fetches get-pip.py from a host outside this network; this
# stand-in installs pip from the standard library instead.
GET_PIP_STAND_IN = '''"""Stand-in for get-pip.py, written by tests/ansible/imds_ansible_env.py.

ansible-test runs it in a new virtual environment to install pip; this one
installs the pip bundled with Python (ensurepip), which needs no network.
"""
import ensurepip

ensurepip.bootstrap(upgrade=True, default_pip=True)
'''


class Built(NamedTuple):
    stage: Path  # .../ansible_collections/imds/ec2, the tree the tarball was built from
    tarball: Path


class AnsibleCore(NamedTuple):
    """One ansible-core of the version matrix: its minor version and the venv's bin/."""

    minor: str  # "2.18"
    bin: Path

    @property
    def name(self) -> str:
        return "ansible-core-" + self.minor


def _minor_key(minor: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in minor.split("."))


def ansible_cores() -> List[AnsibleCore]:
    """Every ansible-core the collection is tested with, oldest first.

    One per ``requirements/ansible-X.Y.txt`` (venv ``.venv-ansible-X.Y/``),
    then the one running these tests (``.venv/``, the newest).
    """
    from ansible.release import __version__  # type: ignore[import-untyped]

    minors = [path.stem[len("ansible-") :] for path in REPO.glob("requirements/ansible-*.txt")]
    cores = [
        AnsibleCore(minor, REPO / ".venv-ansible-{}".format(minor) / "bin")
        for minor in sorted(minors, key=_minor_key)
    ]
    return [*cores, AnsibleCore(".".join(__version__.split(".")[:2]), VENV_BIN)]


def require(core: AnsibleCore) -> AnsibleCore:
    """``core``, or MissingTool if its venv has not been made."""
    if not (core.bin / "ansible-test").is_file():
        raise MissingTool(
            "{} has no venv at {}: run `{}` (with network access) first".format(
                core.name, core.bin.parent, MATRIX_COMMAND
            )
        )
    return core


def ansible_test_package(core: AnsibleCore) -> Path:
    """The ``ansible_test`` package installed in ``core``'s venv."""
    found = sorted(core.bin.parent.glob("lib/python*/site-packages/ansible_test"))
    if not found:
        raise MissingTool("no ansible_test package in {}".format(core.bin.parent))
    return found[0]


def ansible_test_pythons(core: AnsibleCore) -> Tuple[str, ...]:
    """The Python versions ``core``'s ansible-test tests modules on (its own constants)."""
    source = ansible_test_package(core) / "_util" / "target" / "common" / "constants.py"
    found: Dict[str, Tuple[str, ...]] = {}
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = tuple(ast.literal_eval(node.value))
    return found["REMOTE_ONLY_PYTHON_VERSIONS"] + found["CONTROLLER_PYTHON_VERSIONS"]


class Run(NamedTuple):
    returncode: int
    output: str


def local_inventory(hosts: Dict[str, Path]) -> str:
    """An INI inventory of local-connection hosts, each with its own interpreter."""
    lines: List[str] = ["[targets]"]
    lines += ["{} ansible_python_interpreter={}".format(name, path) for name, path in hosts.items()]
    lines += ["", "[targets:vars]", "ansible_connection=local"]
    return "\n".join(lines) + "\n"


def git_repo(path: Path, files: Dict[str, str]) -> str:
    """A git repository at ``path`` holding ``files``, committed; its file:// URL."""
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "site"]):
        subprocess.run(["git", *command], cwd=str(path), env=env, check=True, timeout=60)
    return path.as_uri()


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


UNSAFE = "__ansible_unsafe"  # how ansible-inventory --list marks values not to template


def unmarked(value: Any, every: bool = False) -> Any:
    """The JSON of ``ansible-inventory --list`` without the markers of untrusted strings.

    Every value from instance metadata is marked: a tag holding ``{{ }}`` must
    never be templated. With ``every``, a string without the marker fails.
    """
    if isinstance(value, dict):
        if set(value) == {UNSAFE}:
            return value[UNSAFE]
        return {key: unmarked(item, every) for key, item in value.items()}
    if isinstance(value, list):
        return [unmarked(item, every) for item in value]
    assert not (every and isinstance(value, str)), "not marked unsafe: {!r}".format(value)
    return value


def galaxy_install(bin_dir: Path, tarball: Path, path: Path) -> List[str]:
    """The ansible-galaxy command that installs ``tarball`` into the collections path ``path``."""
    command = [str(bin_dir / "ansible-galaxy"), "collection", "install", "--offline"]
    return [*command, "-p", str(path), str(tarball)]


class MissingTool(Exception):
    """Something the tests need is not on this machine; the message says what to do."""


def load_build() -> ModuleType:
    """``ansible_collection/build.py`` as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("imds_collection_build", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def target_python(version: str) -> Path:
    """A real (not pyenv-shim) interpreter of ``version``."""
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    patterns = [
        os.path.join(root, "versions", version + ".*", "bin", "python" + version)
        for root in roots
        if root
    ]
    patterns += ["/usr/local/bin/python" + version, "/usr/bin/python" + version]
    for pattern in patterns:
        for candidate in sorted(glob.glob(pattern), reverse=True):
            if os.access(candidate, os.X_OK):
                return Path(candidate)
    raise MissingTool(
        "Python {0} not found (looked in $PYENV_ROOT/versions/{0}.*, /usr/local/bin, /usr/bin): "
        "the collection is tested on every target Python from {1} to {2}; "
        "install it, e.g. `pyenv install {0}`".format(
            version, TARGET_VERSIONS[0], TARGET_VERSIONS[-1]
        )
    )


def target_pythons() -> Dict[str, Path]:
    return {version: target_python(version) for version in TARGET_VERSIONS}


def tool_path(pythons: Dict[str, Path], core: Optional[AnsibleCore] = None) -> str:
    """PATH with the venv's tools first, then the target Pythons, without pyenv shims.

    ansible-test finds ``python3.X`` on PATH, and a pyenv shim for a version
    that is not the active one fails when run. With ``core``, its venv comes
    first (ansible-pull runs the ansible-playbook it finds there).
    """
    first = [str(core.bin)] if core is not None and core.bin != VENV_BIN else []
    entries = first + [str(VENV_BIN)] + [str(path.parent) for path in pythons.values()]
    entries += [
        entry
        for entry in os.environ.get("PATH", os.defpath).split(os.pathsep)
        if entry and "/.pyenv/shims" not in entry and entry not in entries
    ]
    return os.pathsep.join(entries)


def java_home() -> Path:
    """The Java (17 or newer) ansible-rulebook runs on: ``JAVA_HOME``, else ``java`` on PATH.

    ansible-rulebook looks in the same places; the tests set ``JAVA_HOME`` to
    what this finds so a missing or old Java fails with one clear line.
    """
    candidates: List[str] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(os.path.join(os.environ["JAVA_HOME"], "bin", "java"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(on_path)
    seen: List[str] = []
    for java in candidates:
        try:
            done = subprocess.run(
                [java, "-XshowSettings:properties", "-version"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except OSError:
            continue
        home = re.search(r"^\s*java\.home = (.+)$", done.stderr, re.M)
        version = re.search(r"^\s*java\.specification\.version = (\d+)", done.stderr, re.M)
        if home and version:
            seen.append("{} (Java {})".format(home.group(1), version.group(1)))
            if int(version.group(1)) >= 17:
                return Path(home.group(1))
    raise MissingTool(
        "ansible-rulebook needs Java 17 or newer (java on PATH or JAVA_HOME); found {}. "
        "On Debian: apt-get install openjdk-17-jre-headless".format(", ".join(seen) or "none")
    )


def ansible_test_pip_version(core: AnsibleCore) -> str:
    """The pip version ``core``'s ansible-test bootstraps into its virtual environments."""
    source = ansible_test_package(core) / "_internal" / "python_requirements.py"
    match = re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", source.read_text())
    if match is None:
        raise MissingTool("cannot tell which pip version ansible-test wants from {}".format(source))
    return match.group(1)


def seed_get_pip(core: AnsibleCore, home: Optional[Path] = None) -> Path:
    """Write the get-pip stand-in where ``core``'s ansible-test looks for a cached get-pip.py."""
    cache = (home or Path.home()) / ".ansible" / "test" / "cache"
    path = cache / "get_pip_{}.py".format(ansible_test_pip_version(core).replace(".", "_"))
    if not path.is_file() or path.read_text() != GET_PIP_STAND_IN:
        cache.mkdir(parents=True, exist_ok=True)
        path.write_text(GET_PIP_STAND_IN)
    return path


def ansible_test(
    core: AnsibleCore,
    args: Sequence[str],
    collection: Path,
    pythons: Dict[str, Path],
    timeout: float,
) -> subprocess.CompletedProcess[str]:
    """Run ``core``'s ``ansible-test ARGS`` in the staged collection ``collection``."""
    env = dict(os.environ, PATH=tool_path(pythons, core), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(core.bin / "ansible-test"), *args],
        cwd=str(collection),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def prime_sanity() -> int:
    """Create each ansible-core's sanity environments (downloads their pinned tools)."""
    pythons = target_pythons()
    cores = [require(core) for core in ansible_cores()]
    with tempfile.TemporaryDirectory(prefix="imds-ec2-prime-") as temp:
        collection = load_build().stage(Path(temp) / "ansible_collections" / "imds" / "ec2")
        for core in cores:
            seed_get_pip(core)
            result = ansible_test(
                core, ["sanity", "--local", "--prime-venvs"], collection, pythons, timeout=3600
            )
            sys.stdout.write(result.stdout)
            if result.returncode != 0:
                print("imds_ansible_env.py: priming {} failed".format(core.name), file=sys.stderr)
                return result.returncode
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["prime-sanity"])
    parser.parse_args(argv)
    try:
        return prime_sanity()
    except MissingTool as exc:
        print("imds_ansible_env.py: {}".format(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
