"""The collection as Galaxy takes it: galaxy-importer, addresses, licences, changelog, role docs.

galaxy-importer is the validator Galaxy runs on every upload. It runs here as
Galaxy runs it (ansible-doc and ansible-lint included, ansible-lint offline;
its ansible-test step needs a container and is off, as it is by default), on
the tarball ``make collection`` builds, from its own venv (``make
importer-env``: its pins clash with salt's). Any ERROR or WARNING line fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable, Dict

import pytest
import yaml
from imds_ansible_env import REPO, Built, Run, load_build
from readme_support import readme_blocks

from ec2_metadata_core.simulator import Simulator

IMPORTER = REPO / ".venv" / "importer" / "bin"
ROLES = REPO / "ansible_collection" / "roles"


@pytest.mark.slow
def test_galaxy_importer_imports_the_tarball_without_error_or_warning(
    built: Built, tmp_path: Path
) -> None:
    if not (IMPORTER / "python").is_file():
        pytest.fail("no galaxy-importer venv at {}: run make importer-env".format(IMPORTER))
    env = dict(
        os.environ,
        PATH="{}:/usr/bin:/bin".format(IMPORTER),
        HOME=str(tmp_path / "home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        GALAXY_IMPORTER_CONFIG=str(tmp_path / "none.cfg"),  # Galaxy's defaults, not /etc's
        GALAXY_IMPORTER_RUN_ANSIBLE_TEST="false",
        GALAXY_IMPORTER_RUN_ANSIBLE_LINT="true",
        GALAXY_IMPORTER_OFFLINE_ANSIBLE_LINT="true",
        GALAXY_IMPORTER_TMP_ROOT_DIR=str(tmp_path),
    )
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [str(IMPORTER / "python"), "-m", "galaxy_importer.main", str(built.tarball)],
        cwd=str(tmp_path),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    loud = [line for line in result.stdout.splitlines() if line.startswith(("ERROR", "WARNING"))]
    assert loud == [], result.stdout
    assert "...ansible-lint run complete" in result.stdout
    assert "Importer processing completed successfully" in result.stdout
    imported = json.loads((tmp_path / "importer_result.json").read_text())
    contents = {(item["content_type"], item["name"]) for item in imported["contents"]}
    assert {
        ("module", "ec2_metadata_facts"),
        ("inventory", "ec2_metadata"),
        ("role", "instance_summary"),
    } <= contents
    assert imported["metadata"]["repository"] == load_build().project_urls()["repository"]


def test_galaxy_yml_addresses_come_from_pyproject(tarball_members: Dict[str, bytes]) -> None:
    import tomllib

    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    info = json.loads(tarball_members["MANIFEST.json"])["collection_info"]
    assert (info["repository"], info["documentation"], info["homepage"], info["issues"]) == (
        urls["Repository"],
        urls["Documentation"],
        urls["Homepage"],
        urls["Issues"],
    )
    root = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert not {"version", "repository", "documentation", "homepage", "issues"} & set(root)


def test_build_refuses_an_address_set_in_galaxy_yml() -> None:
    build = load_build()
    template = (REPO / "galaxy.yml").read_text() + 'issues: "https://example.invalid/"\n'
    with pytest.raises(build.BuildError, match="must not set issues: it comes from pyproject"):
        build.staged_galaxy_yml(template, "0.1.0")


def test_licences_ship_with_the_collection(tarball_members: Dict[str, bytes]) -> None:
    info = json.loads(tarball_members["MANIFEST.json"])["collection_info"]
    assert info["license"] == ["GPL-3.0-or-later", "MIT"]
    gpl = tarball_members["LICENSES/GPL-3.0-or-later.txt"].decode()
    assert "GNU GENERAL PUBLIC LICENSE" in gpl and "Version 3, 29 June 2007" in gpl
    assert tarball_members["LICENSES/MIT.txt"] == (REPO / "LICENSE").read_bytes()
    plugins = [n for n in tarball_members if n.endswith(".py") and "/module_utils/" not in n]
    plugins += ["plugins/module_utils/ansible_face.py", "plugins/module_utils/legacy_facts.py"]
    for name in plugins:
        if name.startswith(("plugins/", "extensions/eda/")):
            head = tarball_members[name].decode().splitlines()[:6]
            assert "# SPDX-License-Identifier: GPL-3.0-or-later" in head, name


def test_no_sanity_ignore_entries() -> None:
    sanity = REPO / "ansible_collection" / "tests" / "sanity"
    assert [p for p in sanity.glob("ignore-*.txt") if p.read_text().strip()] == []


def test_the_changelog_ships_with_the_collection(tarball_members: Dict[str, bytes]) -> None:
    changelog = yaml.safe_load(tarball_members["changelogs/changelog.yaml"])
    assert load_build().project_version() in changelog["releases"]
    assert tarball_members["CHANGELOG.md"] == (REPO / "CHANGELOG.md").read_bytes()


def test_every_role_has_a_readme(tarball_members: Dict[str, bytes]) -> None:
    roles = {path.name for path in ROLES.iterdir() if path.is_dir()}
    assert roles == {"instance_summary"}
    for role in roles:
        assert "roles/{}/README.md".format(role) in tarball_members


@pytest.mark.slow
def test_role_readme_example_writes_the_summary_it_shows(
    imds_simulator: Simulator,
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
    tmp_path: Path,
) -> None:
    readme = ROLES / "instance_summary" / "README.md"
    (shown,) = [b.text for b in readme_blocks(readme) if b.language == "json"]
    (play,) = [b.text for b in readme_blocks(readme) if b.language == "yaml"]
    write("play.yml", play)
    summary = tmp_path / "summary.json"
    result = run_ansible(
        "ansible-playbook", "play.yml", "-e", "instance_summary_path={}".format(summary)
    )
    assert result.returncode == 0, result.output
    assert json.loads(summary.read_text()) == json.loads(shown)
    assert oct(summary.stat().st_mode & 0o777) == "0o640"


def test_the_build_reads_pyproject_without_tomllib_the_same() -> None:
    # Python < 3.11 has no tomllib: the build reads the two tables line by line.
    import tomllib

    text = (REPO / "pyproject.toml").read_text()
    project = tomllib.loads(text)["project"]
    assert load_build()._project_lines(text) == {
        "version": project["version"],
        "urls": project["urls"],
    }
