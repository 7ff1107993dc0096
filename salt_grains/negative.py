"""The remembered answer "no IMDS here", a small file in the minion cachedir.

Only the negative answer is kept: off EC2 every grains refresh (and every
``salt-call``) would otherwise wait for the probe again. Positive values are
never cached, so a refresh sees spot notices, events and tag changes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Optional

log = logging.getLogger(__name__)

FILENAME = os.path.join("imds_ec2", "not-on-ec2.json")


def path_in(cachedir: Optional[str]) -> Optional[str]:
    """Where the answer lives for a minion with this cachedir; None: nowhere."""
    return os.path.join(cachedir, FILENAME) if cachedir else None


def is_fresh(path: Optional[str], endpoint: str, seconds: float) -> bool:
    """True if ``endpoint`` was found absent less than ``seconds`` ago."""
    if path is None or seconds <= 0:
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        checked = float(record["checked"])
        same = record["endpoint"] == endpoint
    except (OSError, ValueError, KeyError, TypeError):
        return False  # none yet, or unreadable: probe again
    age = time.time() - checked
    return same and 0 <= age < seconds


def remember(path: Optional[str], endpoint: str, seconds: float) -> None:
    """Record that ``endpoint`` has no IMDS now; best effort."""
    if path is None or seconds <= 0:
        return
    record = {"endpoint": endpoint, "checked": time.time()}
    temporary = "{}.{}.tmp".format(path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.replace(temporary, path)
    except OSError as exc:
        log.debug("could not remember the absent IMDS in %s: %s", path, exc)
        forget(temporary)


def forget(path: Optional[str]) -> None:
    """Drop a recorded answer, e.g. once IMDS answered."""
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.debug("could not remove %s: %s", path, exc)
