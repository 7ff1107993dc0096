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


def readme_block(path: Path, after: str) -> str:
    """The text of the first fenced code block after the line ``after``."""
    text = path.read_text(encoding="utf-8")
    match = _FENCE.search(text, text.index(after + "\n"))
    assert match is not None, "no code block after {!r} in {}".format(after, path)
    return textwrap.dedent(match.group(3))
