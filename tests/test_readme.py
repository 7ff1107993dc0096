"""The README documents every key of the snapshot and of the flat export's rules."""

from __future__ import annotations

import re
from pathlib import Path

from ec2_metadata_core.model import NetworkInterface, declared
from ec2_metadata_core.snapshot import snapshot_keys

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def table_keys(heading: str) -> list[str]:
    """First-column keys of the first table after ``heading``."""
    section = README.split(heading, 1)[1]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", section.split("\n\n|", 1)[1].split("\n\n")[0], re.M)
    return rows


def test_every_snapshot_key_is_in_the_readme_table() -> None:
    assert table_keys("## The snapshot") == snapshot_keys(
        include_secrets=True, include_user_data=True
    )


def test_every_interface_key_is_in_the_readme_table() -> None:
    expected = sorted([*declared(NetworkInterface), "mac"])
    assert table_keys("Each entry of `network_interfaces`:") == expected


def test_every_test_the_fault_matrix_names_exists() -> None:
    tests_dir = Path(__file__).resolve().parent
    section = README.split("## Reliability: the fault matrix", 1)[1].split("\n## ", 1)[0]
    named = []
    for line in section.splitlines():
        current = None
        for file_name, test_name in re.findall(r"`(?:([\w/]+\.py))?::(\w+)", line):
            current = file_name.replace("tests/", "", 1) if file_name else current
            assert current is not None, line
            named.append((current, test_name))
    assert len(named) > 40
    missing = [
        "{}::{}".format(file_name, test_name)
        for file_name, test_name in named
        if "def {}(".format(test_name) not in (tests_dir / file_name).read_text(encoding="utf-8")
    ]
    assert missing == []
