"""The fenced code blocks of a README, for the tests that run them as printed."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import List, NamedTuple

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
