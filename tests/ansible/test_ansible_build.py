"""The collection tarball: named by the project version, shipping the core's code unchanged."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict

import yaml
from imds_ansible_env import REPO, Built, load_build

CORE = REPO / "ec2_metadata_core"
MODULE_UTILS = "plugins/module_utils/"


def test_tarball_is_named_and_versioned_after_the_project(
    built: Built, tarball_members: Dict[str, bytes]
) -> None:
    version = load_build().project_version()
    assert version == "0.1.0"
    assert built.tarball.name == "imds-ec2-{}.tar.gz".format(version)
    info = json.loads(tarball_members["MANIFEST.json"])["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("imds", "ec2", version)


def test_root_galaxy_yml_names_the_collection_and_leaves_the_version_to_pyproject() -> None:
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("imds", "ec2")
    assert "version" not in galaxy


def test_runtime_metadata_states_the_ansible_versions(tarball_members: Dict[str, bytes]) -> None:
    runtime = yaml.safe_load(tarball_members["meta/runtime.yml"])
    assert runtime["requires_ansible"].startswith(">=2.")


def test_shipped_client_is_the_core_byte_for_byte(tarball_members: Dict[str, bytes]) -> None:
    shipped = load_build().core_closure()
    assert {"__init__.py", "snapshot.py", "events.py", "client.py", "errors.py"} <= set(shipped)
    for name in shipped:
        assert tarball_members[MODULE_UTILS + name] == (CORE / name).read_bytes(), name


def test_the_event_source_ships_unchanged(tarball_members: Dict[str, bytes]) -> None:
    name = "extensions/eda/plugins/event_source/ec2_metadata_events.py"
    assert tarball_members[name] == (REPO / "ansible_collection" / name).read_bytes()
    # It imports the shipped core, found from its own place in the collection.
    tree = ast.parse(tarball_members[name])
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and "imds" in node.module
    }
    assert imported == {"ansible_collections.imds.ec2.plugins.module_utils"}
    assert tarball_members[MODULE_UTILS + "events.py"] == (CORE / "events.py").read_bytes()


def test_every_relative_import_in_module_utils_is_shipped(
    tarball_members: Dict[str, bytes],
) -> None:
    modules = {
        name[len(MODULE_UTILS) : -len(".py")]
        for name in tarball_members
        if name.startswith(MODULE_UTILS) and name.endswith(".py")
    }
    for name in modules:
        tree = ast.parse(tarball_members[MODULE_UTILS + name + ".py"])
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                assert node.module in modules, "{} imports .{}".format(name, node.module)


def test_no_hand_kept_copies_of_core_modules_in_the_repository() -> None:
    kept = REPO / "ansible_collection" / "plugins" / "module_utils"
    core_names = {path.name for path in CORE.glob("*.py")}
    assert not core_names & {path.name for path in kept.glob("*.py")}


def test_build_script_cli_writes_the_tarball(tmp_path: Path) -> None:
    stage = tmp_path / "ansible_collections" / "imds" / "ec2"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "ansible_collection" / "build.py"),
            "--stage",
            str(stage),
            "--dist",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == tmp_path / "dist" / "imds-ec2-0.1.0.tar.gz"
    assert (stage / "galaxy.yml").read_text().count("version: 0.1.0") == 1


def test_build_script_refuses_a_stage_ansible_test_cannot_use(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "ansible_collection" / "build.py"),
            "--stage",
            str(tmp_path / "elsewhere"),
            "--stage-only",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "build.py: stage directory must end in ansible_collections/imds/ec2"
    )
