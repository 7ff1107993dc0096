"""What `pip install ec2-metadata-core` puts into a user's environment.

The wheel is built here, offline, from a copy of the source: what it holds is
what every user gets, whatever the suite's own editable install does. A copy,
because setuptools builds in ``build/`` beside the source, and files an older
build left there would end up in the wheel.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"
    skip = (".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip), symlinks=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    command += ["-q", "--disable-pip-version-check", "-w", str(out), str(source)]
    subprocess.run(command, check=True, capture_output=True)
    (path,) = out.glob("ec2_metadata_core-*.whl")
    return zipfile.ZipFile(path)


def test_installs_no_top_level_module_besides_ours_and_the_saltext_namespace(
    wheel: zipfile.ZipFile,
) -> None:
    names = wheel.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {
        "ec2_metadata_core",
        "saltext",
    }
    # saltext is the namespace every Salt extension shares: no __init__.py of ours.
    assert "saltext/__init__.py" not in names
    assert "saltext/imds_ec2/grains/imds_ec2.py" in names
    assert "saltext/imds_ec2/beacons/ec2_metadata.py" in names
    assert "ec2_metadata_core/py.typed" in names


def test_entry_points_register_with_salt_but_not_with_pytest(wheel: zipfile.ZipFile) -> None:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    groups = configparser.ConfigParser()
    groups.read_string(wheel.read(name).decode("utf-8"))
    assert "pytest11" not in groups
    assert dict(groups["salt.loader"]) == {"saltext.imds_ec2": "saltext.imds_ec2"}
