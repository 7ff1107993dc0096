"""Examples the READMEs print, read back so tests run them as printed."""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(r"```\w*\n(.*?)```", re.S)


def readme_block(readme: Path, after: str) -> str:
    """The first fenced code block of ``readme`` after the line ``after``."""
    text = readme.read_text(encoding="utf-8")
    start = text.index(after + "\n")
    match = _BLOCK.search(text, start)
    assert match is not None, "no code block after {!r} in {}".format(after, readme)
    return match.group(1)
