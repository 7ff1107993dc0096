"""The project's changelog, kept with antsibull-changelog, for all three artifacts.

The library, the Salt extension and the collection share one version, so
they share one changelog: fragments in ``changelogs/fragments/``, folded into
``changelogs/changelog.yaml`` and ``CHANGELOG.md`` by ``antsibull-changelog
release`` (docs/publishing.md). Every artifact ships it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import yaml

ROOT = Path(__file__).resolve().parent.parent
TOOL = Path(sys.executable).parent / "antsibull-changelog"


def changelog(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOL), *args], cwd=str(cwd), capture_output=True, text=True, timeout=120, check=False
    )


def test_fragments_and_changelog_yaml_lint_clean() -> None:
    for args in (["lint"], ["lint-changelog-yaml", "changelogs/changelog.yaml"]):
        result = changelog(*args)
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), args


def test_changelog_md_is_what_the_tool_generates(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "CHANGELOG.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "changelogs", tmp_path / "changelogs")
    result = changelog("generate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "CHANGELOG.md").read_text() == (ROOT / "CHANGELOG.md").read_text()


def test_the_project_version_is_in_the_changelog() -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    releases = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert version in releases
    summary: List[str] = [releases[version]["changes"].get("release_summary", "")]
    assert summary != [""]
    assert "## v{}".format(version.replace(".", "\\.")) in (ROOT / "CHANGELOG.md").read_text()
