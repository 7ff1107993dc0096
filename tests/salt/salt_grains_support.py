"""Helpers for the Salt grains tests: minion config dirs, salt-call, log checks.

(A plain module, not conftest.py, so test modules can import it; its name is
unique because pytest puts this directory itself on sys.path.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional

from saltext.imds_ec2.local import write_local_minion

BIN = Path(sys.executable).parent
SALT_CALL = BIN / "salt-call"
# Salt's log file format puts the level in brackets: "...][WARNING ][1234] message".
_LOUD = re.compile(r"\]\[(WARNING|ERROR|CRITICAL)\s*\]\[")
# What the simulator's default instance holds that must never become a grain.
SECRETS = (
    "ASIASIMULATORKEY0001",
    "simulator-secret",
    "simulator-session-token",
    "simulator-user-data-secret",
)


def injection(marker: Path) -> str:
    """A tag value that, put into a state's YAML unquoted, adds a state creating ``marker``."""
    return "web\n\npwned:\n  cmd.run:\n    - name: touch {}\n".format(marker)


def hostile(marker: Path) -> str:
    """A tag value as an attacker who may tag the instance writes it.

    The ``injection`` and, after it, Jinja, shell words, both quotes, a
    comment, YAML flow syntax and non-ASCII: all must come out literally.
    """
    extras = "{{{{ 7 * 7 }}}} {{% raw %}} $(touch {0}) `touch {0}` \" ' # : - [x] {{a: b}} é 😀"
    return injection(marker) + extras.format(marker)


class Minion(NamedTuple):
    confdir: Path
    root: Path
    log: Path


class CallResult(NamedTuple):
    value: Any
    stdout: str
    seconds: float


def write_minion_config(root: Path, ec2_metadata: Optional[Dict[str, Any]]) -> Minion:
    """A salt-call --local setup under ``root``, as users make one (salt_grains.local)."""
    confdir = write_local_minion(root, "imds-test-minion", ec2_metadata)
    return Minion(confdir, root, root / "minion.log")


def salt_call(target: Minion, *args: str, salt_call: Path = SALT_CALL) -> CallResult:
    """Run ``salt-call --local`` with JSON output; the value under ``local``.

    Salt may print deprecation warnings (stderr, or before the JSON on stdout):
    only the JSON document is read. ``salt_call``: another venv's (the matrix).
    """
    command = [str(salt_call), "--local", "-c", str(target.confdir), "--out=json"]
    command += ["--out-indent=-1", "--log-level=quiet", *args]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    seconds = time.monotonic() - started
    assert done.returncode == 0, "salt-call {} failed:\n{}{}".format(args, done.stdout, done.stderr)
    start = done.stdout.find('{"local"')
    assert start >= 0, "no JSON from salt-call {}:\n{}{}".format(args, done.stdout, done.stderr)
    document, _ = json.JSONDecoder().raw_decode(done.stdout[start:])
    return CallResult(document["local"], done.stdout, seconds)


def loud_lines(log: Path) -> List[str]:
    """Lines Salt logged at WARNING or above."""
    if not log.exists():
        return []
    return [line for line in log.read_text(encoding="utf-8").splitlines() if _LOUD.search(line)]
