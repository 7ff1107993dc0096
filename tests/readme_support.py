"""The fenced code blocks of a README, for the tests that run every one of them."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import List, NamedTuple


class Block(NamedTuple):
    language: str  # after the opening fence: "sh", "yaml", "" ...
    text: str  # dedented when the fence is indented (inside a list item)


def readme_blocks(path: Path) -> List[Block]:
    text = path.read_text(encoding="utf-8")
    return [
        Block(match.group(2), textwrap.dedent(match.group(3)))
        for match in re.finditer(r"(?ms)^( *)```(\w*)\n(.*?)^\1```", text)
    ]
