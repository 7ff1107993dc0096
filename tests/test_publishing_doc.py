"""docs/publishing.md, run: a release's changelog step and the build and gate commands.

In a copy of the repository (its .venv on PATH; the importer's venv where
``make importer-env`` made it), each line as printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml
from readme_support import readme_blocks

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "publishing.md"
BIN = Path(sys.executable).parent


def blocks(language: str) -> List[str]:
    return [b.text for b in readme_blocks(PAGE) if b.language == language]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    skip = (".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(*skip), symlinks=True)
    return target


def env() -> Dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ["PATH"] = "{}:{}".format(BIN, environ.get("PATH", ""))
    return environ


def run(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    line = line.replace(".venv/", str(ROOT / ".venv") + "/")
    return subprocess.run(
        line, shell=True, cwd=str(cwd), env=env(), capture_output=True, text=True, timeout=600
    )


def test_every_block_is_run() -> None:
    assert [b.language for b in readme_blocks(PAGE)] == ["yaml", "sh", "sh"]


def test_a_release_folds_the_fragment_into_the_changelog(copy: Path) -> None:
    (fragment,) = blocks("yaml")
    name = fragment.splitlines()[0].split()[1]
    (copy / name).write_text(fragment)
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(
        re.sub(r'(?m)^version = ".*"$', 'version = "0.1.1"', pyproject.read_text())
    )
    for line in blocks("sh")[0].splitlines():
        result = run(line, copy)
        assert result.returncode == 0, (line, result.stdout + result.stderr)
    releases = yaml.safe_load((copy / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert list(releases) == ["0.1.0", "0.1.1"]
    (fixed,) = releases["0.1.1"]["changes"]["bugfixes"]
    assert "ec2_tags grain follows a tag renamed" in fixed
    assert "v0\\.1\\.1" in (copy / "CHANGELOG.md").read_text()
    assert not (copy / name).exists()  # folded in


def test_the_build_and_gate_commands_pass(copy: Path) -> None:
    lines = blocks("sh")[1].splitlines()
    if not (ROOT / ".venv" / "importer" / "bin" / "python").is_file():
        pytest.fail("no galaxy-importer venv: run make importer-env", pytrace=False)
    for line in lines:
        result = run(line, copy)
        assert result.returncode == 0, (line, result.stdout + result.stderr)
        if "galaxy_importer" in line:
            said = result.stdout.splitlines()
            loud = [said_line for said_line in said if said_line.startswith(("ERROR", "WARNING"))]
            assert loud == [], result.stdout
    built = sorted(path.name for path in (copy / "dist").iterdir())
    assert built == [
        "ec2_metadata_core-0.1.0-py3-none-any.whl",
        "ec2_metadata_core-0.1.0.tar.gz",
        "imds-ec2-0.1.0.tar.gz",
        "saltext_imds_ec2-0.1.0-py3-none-any.whl",
        "saltext_imds_ec2-0.1.0.tar.gz",
    ]
