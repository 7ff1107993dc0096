"""What the minion remembers about IMDS between runs, small files in its cachedir.

- "No IMDS here" (``not-on-ec2.json``): off EC2 every grains refresh (and
  every ``salt-call``) would otherwise wait for the probe again. A record may
  carry its own shorter ``retry_after`` (an IMDS that should be there).
- "An IMDS answered here" (``answered.json``): so a later probe that fails is
  a problem to report, not a machine off EC2.

Values are never kept, so a refresh sees spot notices, events and tag changes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Dict, Optional

log = logging.getLogger(__name__)

FILENAME = os.path.join("imds_ec2", "not-on-ec2.json")
ANSWERED_FILENAME = os.path.join("imds_ec2", "answered.json")
# When to look again at an IMDS that should be there but did not answer.
RETRY_SOON_SECONDS = 60.0


def path_in(cachedir: Optional[str], filename: str = FILENAME) -> Optional[str]:
    """Where a record lives for a minion with this cachedir; None: nowhere."""
    return os.path.join(cachedir, filename) if cachedir else None


def _load(path: Optional[str]) -> Optional[Dict[str, Any]]:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None  # none yet, or unreadable
    return record if isinstance(record, dict) else None


def _write(path: str, record: Dict[str, Any]) -> None:
    temporary = "{}.{}.tmp".format(path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.replace(temporary, path)
    except OSError as exc:
        log.debug("could not write %s: %s", path, exc)
        forget(temporary)


def is_fresh(path: Optional[str], endpoint: str, seconds: float) -> bool:
    """True if ``endpoint`` was found absent less than ``seconds`` (or its retry_after) ago."""
    record = _load(path)
    if record is None or seconds <= 0:
        return False
    try:
        checked = float(record["checked"])
        period = min(seconds, float(record.get("retry_after", seconds)))
        same = record["endpoint"] == endpoint
    except (ValueError, KeyError, TypeError):
        return False
    age = time.time() - checked
    return same and 0 <= age < period


def remember(
    path: Optional[str], endpoint: str, seconds: float, retry_after: Optional[float] = None
) -> None:
    """Record that ``endpoint`` has no IMDS now; best effort."""
    if path is None or seconds <= 0:
        return
    record: Dict[str, Any] = {"endpoint": endpoint, "checked": time.time()}
    if retry_after is not None:
        record["retry_after"] = retry_after
    _write(path, record)


def answered_before(cachedir: Optional[str], endpoint: str) -> bool:
    """Whether an IMDS at ``endpoint`` answered this minion before."""
    record = _load(path_in(cachedir, ANSWERED_FILENAME))
    return record is not None and record.get("endpoint") == endpoint


def remember_answer(cachedir: Optional[str], endpoint: str) -> None:
    """Record that an IMDS at ``endpoint`` answered (once per endpoint change)."""
    path = path_in(cachedir, ANSWERED_FILENAME)
    if path is not None and not answered_before(cachedir, endpoint):
        _write(path, {"endpoint": endpoint, "checked": time.time()})


def forget(path: Optional[str]) -> None:
    """Drop a record, e.g. "no IMDS" once IMDS answered."""
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.debug("could not remove %s: %s", path, exc)
