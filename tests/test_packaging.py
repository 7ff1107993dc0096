"""What ``pip install`` (and ``salt-pip install``) puts into a user's environment.

The project publishes two Python distributions: ``ec2-metadata-core`` (the
library, from the repository root) and ``saltext.imds-ec2`` (the Salt
extension, from ``packaging/saltext/``, its source in ``salt_grains/``). Both
are built here, offline, the way a release builds them (``python -m build``:
an sdist, then the wheel from that sdist), from a copy of the source: files an
older build left in ``build/`` must not end up in what users get. Then the
gates PyPI users meet: ``twine check --strict`` and ``check-wheel-contents``.
"""

from __future__ import annotations

import configparser
import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from email.message import Message
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import pytest

from ec2_metadata_core.simulator import Simulator
from saltext.imds_ec2.local import write_local_minion

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LIBRARY, SALTEXT = "ec2-metadata-core", "saltext.imds-ec2"
SOURCES = {LIBRARY: ".", SALTEXT: "packaging/saltext"}


# salt-call from ``sys.argv[1]`` (the salt-pip target) and ``sys.argv[2]`` (site-packages) only.
SALT_CALL = """
import json, sys
sys.path[:0] = sys.argv[1:3]
from importlib.metadata import version
import ec2_metadata_core, saltext.imds_ec2
mine = version("saltext.imds-ec2") + "==" + version("ec2-metadata-core")
print(ec2_metadata_core.__file__, saltext.imds_ec2.__file__, mine, file=sys.stderr)
sys.argv = json.loads(sys.argv[3])
from salt.scripts import salt_call
salt_call()
"""


class Dist(NamedTuple):
    sdist: Path
    wheel: Path
    output: str  # what the build printed


def project_version() -> str:
    import tomllib

    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def metadata(text: str) -> Message:
    return email.parser.Parser().parsestr(text)


def run(
    command: List[str], env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Dist]:
    out = tmp_path_factory.mktemp("dists")
    source = out / "source"
    skip = (".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip), symlinks=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    built = {}
    for name, folder in SOURCES.items():
        target = out / name
        command = [sys.executable, "-m", "build", "--no-isolation", "-o", str(target)]
        result = run([*command, str(source / folder)], env)
        assert result.returncode == 0, result.stdout + result.stderr
        (sdist,) = target.glob("*.tar.gz")
        (wheel,) = target.glob("*.whl")
        built[name] = Dist(sdist, wheel, result.stdout + result.stderr)
    return built


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A gate of the venv (twine, check-wheel-contents) run on the built files."""
    return run([str(BIN / name), *args])


def wheel_names(dist: Dist) -> List[str]:
    with zipfile.ZipFile(dist.wheel) as wheel:
        return wheel.namelist()


def wheel_file(dist: Dist, suffix: str) -> str:
    with zipfile.ZipFile(dist.wheel) as wheel:
        (name,) = [n for n in wheel.namelist() if n.endswith(suffix)]
        return wheel.read(name).decode("utf-8")


def sdist_names(dist: Dist) -> List[str]:
    with tarfile.open(dist.sdist) as archive:
        return [member.name.split("/", 1)[1] for member in archive if "/" in member.name]


@pytest.mark.parametrize("name", list(SOURCES))
def test_builds_without_a_warning(dists: Dict[str, Dist], name: str) -> None:
    # setuptools' deprecations and missing-file notes, the front end's WARNINGs.
    noise = [
        line
        for line in dists[name].output.splitlines()
        if re.search(r"warning", line, re.I) and "byte-compiling is disabled" not in line
    ]
    assert noise == []


def test_twine_check_passes_for_every_file(dists: Dict[str, Dist]) -> None:
    files = [str(path) for dist in dists.values() for path in (dist.sdist, dist.wheel)]
    result = tool("twine", "check", "--strict", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 4


def test_check_wheel_contents_passes_for_both_wheels(dists: Dict[str, Dist]) -> None:
    result = tool("check-wheel-contents", *(str(dist.wheel) for dist in dists.values()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": OK") == 2


def test_library_wheel_holds_the_library_only(dists: Dict[str, Dist]) -> None:
    names = wheel_names(dists[LIBRARY])
    tops = {name.split("/", 1)[0] for name in names if ".dist-info/" not in name}
    assert tops == {"ec2_metadata_core"}
    assert "ec2_metadata_core/py.typed" in names
    assert "ec2_metadata_core/simulator/data/default-instance.json" in names


def test_saltext_wheel_holds_the_extension_in_the_shared_namespace(
    dists: Dict[str, Dist],
) -> None:
    names = wheel_names(dists[SALTEXT])
    code = {name for name in names if ".dist-info/" not in name}
    # saltext is the namespace every Salt extension shares: no __init__.py of ours.
    assert "saltext/__init__.py" not in code
    assert {name.split("/")[1] for name in code} == {"imds_ec2"}
    shipped = {name[len("saltext/imds_ec2/") :] for name in code}
    in_repo = {
        path.relative_to(ROOT / "salt_grains").as_posix()
        for path in (ROOT / "salt_grains").rglob("*.py")
    }
    assert shipped == in_repo


def test_one_version_for_both_distributions_and_the_collection(
    dists: Dict[str, Dist],
) -> None:
    version = project_version()
    for name, dist in dists.items():
        info = metadata(wheel_file(dist, ".dist-info/METADATA"))
        assert (info["Name"], info["Version"]) == (name, version)
        assert dist.wheel.name.split("-")[1] == version
    saltext = metadata(wheel_file(dists[SALTEXT], ".dist-info/METADATA"))
    assert saltext.get_all("Requires-Dist") == [
        "{}=={}".format(LIBRARY, version),
        '{}[identity]=={}; extra == "identity"'.format(LIBRARY, version),
    ]
    # The collection's build reads the same place.
    sys.path.insert(0, str(ROOT / "ansible_collection"))
    try:
        import build as collection_build  # ansible_collection/build.py
    finally:
        sys.path.pop(0)
    assert collection_build.project_version() == version


def test_both_distributions_carry_the_project_addresses(dists: Dict[str, Dist]) -> None:
    import tomllib

    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert {"Repository", "Documentation", "Issues"} <= set(urls)
    expected = sorted("{}, {}".format(key, url) for key, url in urls.items())
    for dist in dists.values():
        info = metadata(wheel_file(dist, ".dist-info/METADATA"))
        assert sorted(info.get_all("Project-URL") or []) == expected


@pytest.mark.parametrize("name", list(SOURCES))
def test_licence_and_changelog_ship_in_every_artifact(dists: Dict[str, Dist], name: str) -> None:
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License")
    assert wheel_file(dists[name], ".dist-info/licenses/LICENSE") == licence
    info = metadata(wheel_file(dists[name], ".dist-info/METADATA"))
    assert info["License-Expression"] == "MIT"
    names = sdist_names(dists[name])
    assert {"LICENSE", "CHANGELOG.md", "PKG-INFO", "pyproject.toml"} <= set(names)
    assert not [n for n in names if n.startswith(("tests/", "salt_grains/", "packaging/"))]


def test_entry_points_register_the_saltext_with_salt_and_nothing_with_pytest(
    dists: Dict[str, Dist],
) -> None:
    groups = configparser.ConfigParser()
    groups.read_string(wheel_file(dists[SALTEXT], ".dist-info/entry_points.txt"))
    assert groups.sections() == ["salt.loader"]
    assert dict(groups["salt.loader"]) == {"saltext.imds_ec2": "saltext.imds_ec2"}
    library = configparser.ConfigParser()
    library.read_string(wheel_file(dists[LIBRARY], ".dist-info/entry_points.txt"))
    assert library.sections() == ["console_scripts"]


def test_salt_pip_install_from_the_wheels(dists: Dict[str, Dist], tmp_path: Path) -> None:
    """What ``salt-pip install saltext.imds-ec2`` does on a onedir minion, offline.

    salt-pip runs the onedir's ``python -m pip install ... --target=<extras>``
    with ``PYTHONPATH=<extras>`` (salt/scripts.py); here the index is the two
    wheels just built, and the extension must bring the library with it.
    """
    extras = tmp_path / "extras-3.11"
    links = sorted({str(dist.wheel.parent) for dist in dists.values()})
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--disable-pip-version-check"]
    command += [arg for link in links for arg in ("--find-links", link)]
    env = dict(os.environ, PYTHONPATH=str(extras))
    result = run([*command, SALTEXT, "--target={}".format(extras)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    # Then a real salt-call, on a Python that sees only the target directory
    # and the venv's site-packages read without its .pth files: not the
    # editable installs the suite runs on.
    with Simulator() as sim:
        confdir = write_local_minion(tmp_path / "minion", ec2_metadata={"endpoint": sim.url})
        argv = ["salt-call", "--local", "-c", str(confdir), "--out=json", "--log-level=quiet"]
        argv += ["grains.get", "ec2:region"]
        site = sysconfig.get_paths()["purelib"]
        called = run([sys.executable, "-S", "-c", SALT_CALL, str(extras), site, json.dumps(argv)])
    assert called.returncode == 0, called.stdout + called.stderr
    loaded, found = called.stderr.splitlines()[-1].split(), json.loads(called.stdout)
    assert loaded == [
        str(extras / "ec2_metadata_core" / "__init__.py"),
        str(extras / "saltext" / "imds_ec2" / "__init__.py"),
        "{}=={}".format(project_version(), project_version()),
    ]
    assert found == {"local": "eu-central-1"}
