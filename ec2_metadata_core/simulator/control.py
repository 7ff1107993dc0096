"""Live control of a running simulator: notices on cue, values set and deleted.

Users rehearse their reactions off EC2 (a drain on a spot interruption, a
playbook on a tag change) and test ``saltutil.refresh_grains`` against a
changing instance. Two ways in, one set of operations:

* Python (a test, the pytest fixture): the ``Simulator`` methods below
  (``schedule_spot_interruption``, ``recommend_rebalance``,
  ``schedule_maintenance``, ``cancel_maintenance``, ``complete_maintenance``,
  ``set_lifecycle_state``, ``set_tag``, ``delete_tag``, and ``set``/``delete``
  for any path).
* Another process: ``POST /_simulator/<operation>?args=<JSON object>`` on the
  simulator's own port, which ``ec2-metadata-core simulate ctl`` sends. Real
  IMDS has no such path. Only loopback peers are served (others get 403), and
  only requests that name a loopback host (``Host: 127.0.0.1:PORT``,
  ``localhost``, ``[::1]``) and come from no other site (no ``Origin`` but a
  loopback one): a web page the developer opens could otherwise reach it
  through DNS rebinding (a name of the attacker's, resolved to 127.0.0.1)
  and change the running simulator.
  ``Simulator.control = False`` (``simulate --no-control``) turns it off (404,
  as real IMDS answers). Answers are JSON: ``{"result": ...}`` or
  ``{"error": "one line"}`` with 400 (bad arguments) or 404 (unknown operation).
  Control requests bypass latency, faults and silence (so a test can change
  data during a simulated outage) and are not counted in ``stats``.

Times are what real IMDS writes: ISO 8601 ``Z`` for spot and rebalance
notices, ``21 Jan 2019 09:00:43 GMT`` for maintenance windows. Nothing
happens at a spot notice's action time: the notice simply stays.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import re
import secrets
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from .instance import Directory, Node, StoredValue, split_data_path
from .notices import MAINTENANCE_CODES, SPOT_ACTIONS
from .protocol import InstanceProtocol

PREFIX = "/_simulator/"
_SPOT = "meta-data/spot/instance-action"
_TERMINATION = "meta-data/spot/termination-time"
_REBALANCE = "meta-data/events/recommendations/rebalance"
_SCHEDULED = "meta-data/events/maintenance/scheduled"
_HISTORY = "meta-data/events/maintenance/history"
_LIFECYCLE = "meta-data/autoscaling/target-lifecycle-state"
_TAGS = "meta-data/tags/instance/"
# What EC2 allows in a tag key for tags in instance metadata (docs/imds.md).
_TAG_KEY = re.compile(r"[A-Za-z0-9+\-=.,_:@]{1,128}")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Read-modify-write of a maintenance list must not interleave; control is rare.
_EDIT = threading.Lock()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event_time(when: dt.datetime) -> str:
    """``21 Jan 2019 09:00:43 GMT``, whatever the locale (strftime's %b is not)."""
    return "{:02d} {} {:04d} {:02d}:{:02d}:{:02d} GMT".format(
        when.day, _MONTHS[when.month - 1], when.year, when.hour, when.minute, when.second
    )


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1e8:
        raise ValueError(f"{name} must be a number of seconds (0 to 1e8), not {value!r}")
    return float(value)


class NoticeControls(InstanceProtocol):
    """The live controls of ``Simulator`` (mixed in; see the module docstring).

    Each is a ``set`` or ``delete`` of the served tree (``protocol.py``).
    """

    control = True  # serve /_simulator/ to loopback peers

    # -- reading the served tree -------------------------------------------------

    def read(self, path: str) -> Optional[bytes]:
        """The body served at ``path`` (a leaf), or None if absent."""
        segments = split_data_path(path)
        with self._data_lock:
            node: Node = self._root
            for segment in segments:
                if not isinstance(node, Directory) or segment not in node.entries:
                    return None
                node = node.entries[segment]
            return node.body if isinstance(node, StoredValue) else None

    def _json_list(self, path: str) -> List[Any]:
        body = self.read(path)
        if body is None or not body.strip():
            return []
        value = json.loads(body)
        if not isinstance(value, list):
            raise ValueError(f"{path} does not hold a JSON list")
        return value

    def _discard(self, path: str) -> None:
        with contextlib.suppress(KeyError):
            self.delete(path)

    # -- notices -------------------------------------------------------------------

    def schedule_spot_interruption(
        self, in_seconds: float = 120.0, action: str = "terminate"
    ) -> Dict[str, str]:
        """Post a spot notice now: ``action`` (terminate, stop, hibernate) in ``in_seconds``.

        AWS gives about two minutes. A terminate notice also sets
        ``spot/termination-time``, as EC2 does. Returns the notice.
        """
        if action not in SPOT_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(SPOT_ACTIONS)}, not {action!r}")
        when = _iso(_now() + dt.timedelta(seconds=_seconds("in_seconds", in_seconds)))
        notice = {"action": action, "time": when}
        with _EDIT:
            self.set(_SPOT, {"$json": notice, "$compact": True})
            if action == "terminate":
                self.set(_TERMINATION, when)
            else:
                self._discard(_TERMINATION)
        return notice

    def cancel_spot_interruption(self) -> None:
        """Withdraw the spot notice (both paths answer 404 again)."""
        with _EDIT:
            self._discard(_SPOT)
            self._discard(_TERMINATION)

    def recommend_rebalance(self) -> Dict[str, str]:
        """Post a rebalance recommendation noticed now; returns it."""
        notice = {"noticeTime": _iso(_now())}
        self.set(_REBALANCE, {"$json": notice, "$compact": True})
        return notice

    def cancel_rebalance(self) -> None:
        self._discard(_REBALANCE)

    def schedule_maintenance(
        self,
        code: str = "system-reboot",
        in_seconds: float = 86400.0,
        duration: float = 7200.0,
        description: Optional[str] = None,
        event_id: Optional[str] = None,
    ) -> Dict[str, str]:
        """Add a scheduled maintenance event starting in ``in_seconds``; returns it.

        Naming the ``event_id`` of a scheduled event reschedules that event.
        """
        if code not in MAINTENANCE_CODES:
            raise ValueError(f"code must be one of {', '.join(MAINTENANCE_CODES)}, not {code!r}")
        start = _now() + dt.timedelta(seconds=_seconds("in_seconds", in_seconds))
        end = start + dt.timedelta(seconds=_seconds("duration", duration))
        event = {
            "NotBefore": _event_time(start),
            "Code": code,
            "Description": MAINTENANCE_CODES[code] if description is None else str(description),
            "EventId": event_id or "instance-event-" + secrets.token_hex(9)[:17],
            "NotAfter": _event_time(end),
            "State": "active",
        }
        with _EDIT:
            scheduled = [e for e in self._json_list(_SCHEDULED) if e.get("EventId") != event_id]
            self.set(_SCHEDULED, {"$json": [*scheduled, event]})
        return event

    def cancel_maintenance(self, event_id: str) -> Dict[str, str]:
        """Move a scheduled event to history as canceled (IMDS's spelling); returns it."""
        return self._retire(event_id, "canceled", "[Canceled] ")

    def complete_maintenance(self, event_id: str) -> Dict[str, str]:
        """Move a scheduled event to history as completed; returns it."""
        return self._retire(event_id, "completed", "[Completed] ")

    def _retire(self, event_id: str, state: str, prefix: str) -> Dict[str, str]:
        with _EDIT:
            scheduled = self._json_list(_SCHEDULED)
            found = [e for e in scheduled if e.get("EventId") == event_id]
            if not found:
                known = ", ".join(str(e.get("EventId")) for e in scheduled) or "none"
                raise ValueError(
                    f"no scheduled maintenance event {event_id!r} (scheduled: {known})"
                )
            event = dict(found[0], State=state)
            event["Description"] = prefix + str(event.get("Description", ""))
            self.set(_SCHEDULED, {"$json": [e for e in scheduled if e is not found[0]]})
            self.set(_HISTORY, {"$json": [*self._json_list(_HISTORY), event]})
        return event

    def set_lifecycle_state(self, state: Optional[str]) -> None:
        """Set ``autoscaling/target-lifecycle-state`` (e.g. Terminated); None removes it."""
        if state is None:
            self._discard(_LIFECYCLE)
            return
        if not isinstance(state, str) or not state.strip() or "\n" in state:
            raise ValueError(f"state must be one line of text, not {state!r}")
        self.set(_LIFECYCLE, state)

    def set_tag(self, key: str, value: str) -> None:
        """Add or change an instance tag (seen live, as on Nitro instances)."""
        if not isinstance(key, str) or not _TAG_KEY.fullmatch(key):
            raise ValueError(
                f"tag key {key!r} cannot appear in instance metadata "
                "(letters, digits and + - = . , _ : @ only)"
            )
        if not isinstance(value, str):
            raise ValueError(f"a tag value is text, not {value!r}")
        self.set(_TAGS + key, value)

    def delete_tag(self, key: str) -> None:
        """Remove an instance tag; ValueError if it is not there."""
        try:
            self.delete(_TAGS + key)
        except KeyError:
            raise ValueError(f"no tag {key!r}") from None

    # -- the control endpoint ----------------------------------------------------

    def _control(
        self, method: str, target: str, peer: Any, fields: Optional[Dict[str, str]] = None
    ) -> Tuple[int, bytes]:
        """Answer a request under ``PREFIX``: (status, JSON body); ``fields``: its headers."""
        if not self.control:
            return 404, _json({"error": "not found"})
        host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not is_loopback(host.split("%")[0]):
            return 403, _json({"error": "simulator control is served to loopback peers only"})
        fields = fields or {}
        if not is_loopback(_hostname(fields.get("host", ""))):
            return 403, _json(
                {"error": "simulator control needs a loopback Host (127.0.0.1, localhost, [::1])"}
            )
        origin = fields.get("origin")
        cross_site = fields.get("sec-fetch-site", "none") not in ("none", "same-origin")
        if cross_site or (
            origin is not None and not is_loopback(_hostname(urlsplit(origin).netloc))
        ):
            return 403, _json({"error": "simulator control is not served to other sites"})
        if method != "POST":
            return 405, _json({"error": "use POST"})
        parts = urlsplit(target)
        name = parts.path[len(PREFIX) :].strip("/")
        operation = OPERATIONS.get(name)
        if operation is None:
            return 404, _json(
                {
                    "error": f"unknown control operation {name!r}; "
                    f"operations: {', '.join(OPERATIONS)}"
                }
            )
        try:
            raw = parse_qs(parts.query, strict_parsing=False).get("args", ["{}"])[-1]
            args = json.loads(raw)
            if not isinstance(args, dict):
                raise ValueError("args must be a JSON object")
            result = operation(self, **args)
        except TypeError as exc:  # a missing or unexpected argument
            return 400, _json({"error": f"{name}: {exc}"})
        except (ValueError, KeyError) as exc:
            message = str(exc.args[0]) if exc.args else type(exc).__name__
            return 400, _json({"error": f"{name}: {message}"})
        return 200, _json({"result": result})


def _hostname(authority: str) -> str:
    """The host of a ``Host`` header or an origin's authority, without port or brackets."""
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def is_loopback(host: str) -> bool:
    """A loopback address, or ``localhost`` (which no one else's DNS can answer for)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True).encode("utf-8")


def _set(sim: NoticeControls, path: str, value: Any) -> None:
    sim.set(path, value)


def _delete(sim: NoticeControls, path: str) -> None:
    try:
        sim.delete(path)
    except KeyError:
        raise ValueError(f"{path!r} is absent") from None


def _expire_tokens(sim: Any) -> None:
    sim.expire_tokens()


# name -> the function it runs, called with the simulator and the args object.
OPERATIONS: Dict[str, Callable[..., Any]] = {
    "set": _set,
    "delete": _delete,
    "spot-interruption": NoticeControls.schedule_spot_interruption,
    "cancel-spot-interruption": NoticeControls.cancel_spot_interruption,
    "rebalance": NoticeControls.recommend_rebalance,
    "cancel-rebalance": NoticeControls.cancel_rebalance,
    "maintenance": NoticeControls.schedule_maintenance,
    "cancel-maintenance": NoticeControls.cancel_maintenance,
    "complete-maintenance": NoticeControls.complete_maintenance,
    "lifecycle": NoticeControls.set_lifecycle_state,
    "tag": NoticeControls.set_tag,
    "untag": NoticeControls.delete_tag,
    "expire-tokens": _expire_tokens,
}
