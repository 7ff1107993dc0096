"""The fenced code blocks of the README and of docs/, for the tests that run them as printed.

``RUN_BY`` names, for every page of ``docs/`` that shows code, the test module
that runs its blocks; ``tests/test_readme.py`` fails on a page missing here, so
an example cannot be added where no test reads it.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
# docs/ page -> the test modules (under tests/) that run its code blocks.
RUN_BY: Dict[str, Tuple[str, ...]] = {
    "library.md": ("test_readme_examples.py",),
    "snapshot.md": ("test_readme_examples.py",),
    "cli.md": ("test_readme_examples.py",),
    "events.md": ("test_readme_examples.py",),
    "simulator.md": ("test_readme_examples.py",),
    "identity.md": (
        "test_identity_docs.py",
        "ansible/test_ansible_identity.py",
        "salt/test_salt_enroll.py",
    ),
    "migrate-amazon-aws.md": ("ansible/test_ansible_migrate.py",),
    "migrate-ec2-metadata.md": ("test_migrate_ec2_metadata.py",),
    "migrate-salt-metadata-grain.md": ("salt/test_salt_metadata3006.py",),
    "publishing.md": ("test_publishing_doc.py",),
    "trust.md": (
        "salt/test_salt_readme.py",
        "salt/test_salt_versions.py",
        "ansible/test_ansible_trust.py",
    ),
}

_FENCE = re.compile(r"(?ms)^( *)```(\w*)\n(.*?)^\1```")


class Block(NamedTuple):
    language: str  # after the opening fence: "sh", "yaml", "" ...
    text: str  # dedented when the fence is indented (inside a list item)


def readme_blocks(path: Path) -> List[Block]:
    text = path.read_text(encoding="utf-8")
    return [
        Block(match.group(2), textwrap.dedent(match.group(3))) for match in _FENCE.finditer(text)
    ]


def readme_block(path: Path, first_line: str) -> str:
    """The text of the one fenced code block whose first line is ``first_line``."""
    found = [b.text for b in readme_blocks(path) if b.text.splitlines()[:1] == [first_line]]
    assert len(found) == 1, "{} blocks start with {!r} in {}".format(len(found), first_line, path)
    return found[0]


def pages_run_by(test_module: str) -> List[Path]:
    """README.md, then the docs/ pages whose blocks ``test_module`` runs, in a fixed order."""
    return [REPO / "README.md"] + [DOCS / page for page, by in RUN_BY.items() if test_module in by]
