"""The docs document every key of the snapshot, and every example in them is run by a test.

The README stays a front door: the reference is in docs/.
"""

from __future__ import annotations

import re
from pathlib import Path

from readme_support import DOCS, REPO, RUN_BY, readme_blocks

from ec2_metadata_core.lazy import declared
from ec2_metadata_core.model import NetworkInterface
from ec2_metadata_core.snapshot import snapshot_keys

SNAPSHOT_DOC = (DOCS / "snapshot.md").read_text(encoding="utf-8")
WIRE_DOC = (DOCS / "wire.md").read_text(encoding="utf-8")


def table_keys(heading: str) -> list[str]:
    """First-column keys of the first table after ``heading``."""
    section = SNAPSHOT_DOC.split(heading, 1)[1]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", section.split("\n\n|", 1)[1].split("\n\n")[0], re.M)
    return rows


def test_every_snapshot_key_is_in_the_readme_table() -> None:
    assert table_keys("# The snapshot") == snapshot_keys(
        include_secrets=True, include_user_data=True
    )


def test_every_interface_key_is_in_the_readme_table() -> None:
    expected = sorted([*declared(NetworkInterface), "mac"])
    assert table_keys("Each entry of `network_interfaces`:") == expected


def test_every_test_the_fault_matrix_names_exists() -> None:
    tests_dir = Path(__file__).resolve().parent
    section = WIRE_DOC.split("## Reliability: the fault matrix", 1)[1].split("\n## ", 1)[0]
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


def test_every_docs_page_with_examples_is_run_by_a_test() -> None:
    shown = sorted(page.name for page in DOCS.glob("*.md") if readme_blocks(page))
    assert [page for page in shown if page not in RUN_BY] == []
    for page, modules in RUN_BY.items():
        assert page in shown, page  # a stale entry
        for module in modules:  # each names the page it runs
            assert page in (REPO / "tests" / module).read_text(encoding="utf-8"), (page, module)


def test_the_readme_is_a_front_door() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    unlinked = [page.name for page in DOCS.glob("*.md") if "(docs/" + page.name + ")" not in text]
    assert unlinked == []  # every page is reachable from the front door
