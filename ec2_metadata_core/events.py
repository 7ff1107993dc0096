"""Notices that IMDS posts while the instance runs, turned into events.

A spot instance gets about two minutes' warning, and nothing pushes it: the
notice is a path that stops answering 404. ``Watcher`` polls the few paths that
change (AWS asks for every 5 s), diffs each answer against what it reported
before, and hands out one ``Event`` per new notice or change.

Contract (the ``watch`` CLI, the Salt beacon and the Event-Driven Ansible
source build on it; names and shapes are stable)::

    from ec2_metadata_core.events import Watcher, Event, KINDS
    w = Watcher(metadata=None, *, interval=5.0, kinds=None, tags_interval=None)
    w.poll() -> List[Event]      # one poll now: what is new since the last poll
    w.watch(stop=None) -> Iterator[Event]   # poll every `interval` s until stop.set()

* ``metadata``: an ``EC2Metadata`` (its client, token and settings are used);
  default: a new one from the AWS SDK settings and environment.
* ``kinds``: which kinds to watch (see ``select_kinds``: a kind, its group
  before the slash such as ``maintenance``, or a comma-separated string of
  them); default all. Only the paths those kinds need are read.
* ``tags_interval`` (added after the first version of this API): seconds
  between re-reads of what rarely changes and costs a request each: the values
  of known tags and the maintenance history (0: every poll; default
  ``TAG_VALUES_EVERY`` polls). The tag listing is read every poll, so an added
  or removed tag is reported at the next poll, a changed value within
  ``tags_interval`` (by default, two polling intervals). The history is read
  at once, too, whenever the scheduled list changed (the way an event gets
  there) and after a failed poll; ``tags_interval`` bounds only an entry that
  appears without its event ever being scheduled while the watch ran.
* Bad ``interval``, ``tags_interval`` or ``kinds``: ``ConfigError``, one line.
* The first poll reports what is pending now: a spot interruption, a rebalance
  recommendation, each scheduled maintenance event, the Auto Scaling target
  lifecycle state. Tags and the maintenance history are taken as they are
  (a baseline); later polls report their changes.
* ``poll()`` raises an ``IMDSError`` when IMDS could not be read. It logs one
  WARNING for the first failed poll of an outage and none for the next ones
  (the record has ``imds_outage=True``), one INFO line when IMDS answers again.
  Nothing that happened meanwhile is lost: the next good poll reports it.
  Events of the kinds that could be read in a poll that partly failed are
  kept and come first in the next result (``watch`` yields them at once;
  ``take_held()`` hands them out after the error).
  ``w.polls`` and ``w.failed_polls`` count polls.
* ``watch()`` never raises for an outage (logged gaps); it raises only what a
  retry cannot mend (``MetadataDisabledError``, ``ConfigError``). Polls keep
  to a fixed rhythm; it returns within one poll of ``stop.set()``.
* An event is never reported twice: a notice is reported once for each
  distinct content (a rescheduled maintenance event, a new spot notice time
  are new contents); a maintenance event that leaves ``scheduled`` for
  ``history`` is reported once as cancelled or completed.

``Event`` (a plain JSON-safe dict)::

    {"kind": "spot/interruption",            # one of KINDS
     "notice": {"action": "terminate", "time": "2026-11-28T08:22:00Z"},
     "time": "2026-11-28T08:22:00Z",         # the notice's time, ISO 8601 UTC, or null
     "instance_id": "i-0123...", "region": "eu-west-1", "availability_zone": "eu-west-1a",
     "path": "meta-data/spot/instance-action"}   # under /latest/

``notice`` per kind: ``spot/interruption`` the JSON document (``time`` its
``time``); ``rebalance/recommendation`` the JSON document (``time`` its
``noticeTime``); ``maintenance/*`` the one event of the JSON list (``time`` its
``NotBefore``); ``autoscaling/lifecycle`` ``{"previous": state or null,
"current": state}`` (``time`` null); ``tags/changed`` ``{"added": {key: value},
"removed": {key: old value}, "changed": {key: {"old": ..., "new": ...}}}``
(``time`` null). A notice whose JSON has an unexpected shape is still
reported, with ``time`` null (a warning says why): a spot notice must not be
dropped because AWS added an action.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Optional,
    Set,
    Tuple,
    TypedDict,
    Union,
)

from . import parse
from .errors import ConfigError, IMDSError, MalformedResponseError, MetadataDisabledError
from .lazy import declared
from .model import EC2Metadata
from .plan import Plan

if TYPE_CHECKING:  # pragma: no cover - the watcher loads the client on its first poll
    from .client import Body


def _log() -> Any:
    """This module's logger; logging loads on first use (the CLI's dump and get never need it)."""
    import logging

    return logging.getLogger(__name__)


SPOT = "spot/interruption"
REBALANCE = "rebalance/recommendation"
MAINTENANCE_SCHEDULED = "maintenance/scheduled"
MAINTENANCE_CANCELLED = "maintenance/cancelled"
MAINTENANCE_COMPLETED = "maintenance/completed"
LIFECYCLE = "autoscaling/lifecycle"
TAGS = "tags/changed"
KINDS: Tuple[str, ...] = (
    SPOT,
    REBALANCE,
    MAINTENANCE_SCHEDULED,
    MAINTENANCE_CANCELLED,
    MAINTENANCE_COMPLETED,
    LIFECYCLE,
    TAGS,
)
_MAINTENANCE = frozenset((MAINTENANCE_SCHEDULED, MAINTENANCE_CANCELLED, MAINTENANCE_COMPLETED))

DEFAULT_INTERVAL = 5.0  # seconds; what AWS asks of spot instances
# Re-reading every tag value costs a request per tag (each a TCP connection on
# the real service), and a changed value is not urgent the way a spot notice
# is: by default they are read every other poll, so a change still shows
# within two polling intervals, at about half the cost of every poll. The
# listing, read every poll, shows an added or removed key at once.
TAG_VALUES_EVERY = 2
MIN_INTERVAL = 0.01
MAX_INTERVAL = 86400.0

# The paths, from the model's declarations: one place says where a value lives.
_DECLARED = declared(EC2Metadata)
SPOT_PATH = _DECLARED["spot_instance_action"].reads[0]
REBALANCE_PATH = _DECLARED["events_recommendations_rebalance"].reads[0]
SCHEDULED_PATH = _DECLARED["events_maintenance_scheduled"].reads[0]
HISTORY_PATH = _DECLARED["events_maintenance_history"].reads[0]
LIFECYCLE_PATH = _DECLARED["autoscaling_target_lifecycle_state"].reads[0]
_TAGS = _DECLARED["tags"].listings[0]
TAGS_PATH = _TAGS.item
# The attributes every event carries, and the paths they are read from.
_IDENTITY_KEYS = ("instance_id", "region", "availability_zone")
_IDENTITY_PATHS = tuple(Plan(_IDENTITY_KEYS).first)


class Event(TypedDict):
    """One notice or change; see the module docstring for each kind's ``notice``."""

    kind: str
    notice: Any
    time: Optional[str]
    instance_id: Optional[str]
    region: Optional[str]
    availability_zone: Optional[str]
    path: str


def select_kinds(spec: Union[str, Iterable[str], None]) -> FrozenSet[str]:
    """The kinds ``spec`` names: ``None`` for all, kinds or groups (``maintenance``).

    A string is split at commas. An unknown name is a ``ConfigError`` naming
    the valid ones.
    """
    if spec is None:
        return frozenset(KINDS)
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen: Set[str] = set()
    for raw in names:
        name = str(raw).strip()
        if not name:
            continue
        matched = [kind for kind in KINDS if name in (kind, kind.partition("/")[0])]
        if not matched:
            raise ConfigError(
                "unknown event kind {!r}; kinds: {} (or a group: {})".format(
                    name,
                    ", ".join(KINDS),
                    ", ".join(sorted({kind.partition("/")[0] for kind in KINDS})),
                )
            )
        chosen.update(matched)
    if not chosen:
        raise ConfigError("no event kind given; kinds: {}".format(", ".join(KINDS)))
    return frozenset(chosen)


_UNSEEN = object()  # no body yet: unlike any body, None (absent) too


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _body(outcomes: Dict[str, Body], path: str) -> Optional[bytes]:
    """The body read for ``path``; the read's error if it failed."""
    outcome = outcomes.get(path)
    if isinstance(outcome, IMDSError):
        raise outcome
    return outcome


class Watcher:
    """Polls IMDS for notices and reports each new one once (see the module docstring)."""

    def __init__(
        self,
        metadata: Optional[EC2Metadata] = None,
        *,
        interval: float = DEFAULT_INTERVAL,
        kinds: Union[str, Iterable[str], None] = None,
        tags_interval: Optional[float] = None,
    ) -> None:
        from . import config

        self.metadata = metadata if metadata is not None else EC2Metadata()
        self.interval: float = config.parse_number(
            "interval", interval, float, MIN_INTERVAL, MAX_INTERVAL
        )
        self.kinds = select_kinds(kinds)
        if tags_interval is None:
            tags_interval = TAG_VALUES_EVERY * self.interval
        self.tags_interval: float = config.parse_number(
            "tags_interval", tags_interval, float, 0.0, MAX_INTERVAL
        )
        # Monotonic time of the next re-read of known tag values and the history.
        self._recheck_due = 0.0
        self._rechecking = False  # whether this poll re-reads them
        self.polls = 0  # polls attempted
        self.failed_polls = 0  # of which failed (in whole or in part)
        self._outage = False
        self._held: List[Event] = []
        self._identity: Optional[Dict[str, Optional[str]]] = None
        # What was reported, per kind: contents already reported never come back.
        self._seen: Dict[str, Set[str]] = {}  # kind -> contents reported (spot, rebalance)
        self._scheduled: Dict[str, str] = {}  # event key -> content reported
        self._history: Optional[Set[str]] = None  # event keys in history (baseline first)
        self._lifecycle: Optional[str] = None
        self._tags: Optional[Dict[str, str]] = None  # None until tags were read once
        # The body of each path as the step that reads it last took it in. The
        # scheduled list's says whether the history must be read again.
        self._consumed: Dict[str, Body] = {}

    def __repr__(self) -> str:
        return "Watcher(interval={:g}, kinds={})".format(self.interval, sorted(self.kinds))

    # -- what to read ------------------------------------------------------

    def paths(self) -> List[str]:
        """The paths the next poll reads first (tag values of new keys follow the listing)."""
        kinds = self.kinds
        wanted: List[str] = []
        # Half a poll of slack: a poll that comes a little early on its rhythm
        # still counts as the one the re-reads are due at.
        self._rechecking = time.monotonic() + self.interval / 2 >= self._recheck_due
        if self._identity is None:
            wanted.extend(_IDENTITY_PATHS)
        if SPOT in kinds:
            wanted.append(SPOT_PATH)
        if REBALANCE in kinds:
            wanted.append(REBALANCE_PATH)
        if kinds & _MAINTENANCE:
            wanted.append(SCHEDULED_PATH)
            if self._rechecking or SCHEDULED_PATH not in self._consumed:
                wanted.append(HISTORY_PATH)  # else only if the list changed (``_follow``)
        if LIFECYCLE in kinds:
            wanted.append(LIFECYCLE_PATH)
        if TAGS in kinds:
            wanted.append(TAGS_PATH)
            # Values of known keys go out with the listing (one round trip deep),
            # every tags_interval; a new key's value follows the listing at once.
            if self._rechecking:
                wanted.extend(_TAGS.named(key) for key in self._tags or ())
        return wanted

    def _follow(self, path: str, body: Optional[bytes]) -> List[str]:
        if path == SCHEDULED_PATH:  # changed: an event may have gone to the history
            return [HISTORY_PATH] if self._consumed.get(path, _UNSEEN) != body else []
        if path != TAGS_PATH or body is None:
            return []
        known = self._tags or {}
        try:
            names = _TAGS.entries(path, body)
        except IMDSError:
            return []  # reported when the listing is parsed again below
        return [_TAGS.named(name) for name in names if name not in known]

    # -- polling -----------------------------------------------------------

    def poll(self) -> List[Event]:
        """Read the changing paths once; the events new since the last poll.

        Raises the ``IMDSError`` of a read that failed (see the module docstring).
        """
        self.polls += 1
        client = self.metadata.client
        try:
            outcomes = client.fetch(self.paths(), follow=self._follow)
        except (MetadataDisabledError, ConfigError):
            raise
        except IMDSError as exc:
            self._failed(exc)
            raise
        events: List[Event] = []
        failure: Optional[IMDSError] = None
        steps: List[Tuple[Callable[[Dict[str, Body]], List[Event]], Iterable[str]]] = [
            (self._read_identity, ())
        ]
        kinds = self.kinds
        if SPOT in kinds:
            steps.append((self._spot, (SPOT_PATH,)))
        if REBALANCE in kinds:
            steps.append((self._rebalance, (REBALANCE_PATH,)))
        if kinds & _MAINTENANCE:
            steps.append((self._maintenance, (SCHEDULED_PATH, HISTORY_PATH)))
        if LIFECYCLE in kinds:
            steps.append((self._autoscaling, (LIFECYCLE_PATH,)))
        if TAGS in kinds:
            steps.append((self._tags_changed, [p for p in outcomes if p.startswith(TAGS_PATH)]))
        consumed = self._consumed
        for step, inputs in steps:
            read = [(path, outcomes[path]) for path in inputs if path in outcomes]
            # Each step is a diff against its own state: given the very bodies
            # it last took in, it has nothing new to say. Most polls are that.
            if read and all(consumed.get(path, _UNSEEN) == body for path, body in read):
                continue
            try:
                events.extend(step(outcomes))
            except IMDSError as exc:  # this kind keeps its state; the next poll retries it
                failure = failure or exc
            else:
                consumed.update(read)
        if failure is not None:
            self._held.extend(events)
            self._failed(failure)
            raise failure
        if self._rechecking:  # done: the next re-reads are a tags_interval away
            self._recheck_due = time.monotonic() + self.tags_interval
        if self._outage:
            self._outage = False
            _log().info("IMDS answers again; events of the gap follow")
        return self.take_held() + events

    def watch(self, stop: Optional[threading.Event] = None) -> Iterator[Event]:
        """Poll every ``interval`` seconds until ``stop`` is set, yielding events as they come.

        Nothing is yielded once ``stop`` is set, not even the rest of one poll's events.
        """
        if stop is None:
            stop = threading.Event()
        due = time.monotonic()
        while not stop.is_set():
            try:
                events = self.poll()
            except (MetadataDisabledError, ConfigError):
                raise
            except IMDSError:
                events = self.take_held()  # the failure was logged by poll()
            for index, event in enumerate(events):
                if stop.is_set():
                    # Stopped by the consumer: the rest of this poll's events are not
                    # yielded, and not lost either (the next poll() returns them first).
                    self._held[:0] = events[index:]
                    return
                yield event
            due += self.interval
            now = time.monotonic()
            if due < now:  # a poll outlasted the interval: start again now, don't bunch up
                due = now
            if stop.wait(due - now):
                return

    def take_held(self) -> List[Event]:
        """The events a partly failed poll could read, now rather than at the next poll."""
        held, self._held = self._held, []
        return held

    def _failed(self, exc: IMDSError) -> None:
        self.failed_polls += 1
        # What changed in the gap: the history at the next poll.
        self._consumed.pop(SCHEDULED_PATH, None)
        if not self._outage:
            self._outage = True
            _log().warning(
                "IMDS poll failed (%s); still watching, events of the gap will be "
                "reported once IMDS answers",
                exc,
                extra={"imds_outage": True},
            )

    # -- per kind ------------------------------------------------------------

    def _event(self, kind: str, notice: Any, when: Optional[str], path: str) -> Event:
        identity = self._identity or {}
        return Event(
            kind=kind,
            notice=notice,
            time=when,
            instance_id=identity.get("instance_id"),
            region=identity.get("region"),
            availability_zone=identity.get("availability_zone"),
            path=path,
        )

    def _read_identity(self, outcomes: Dict[str, Body]) -> List[Event]:
        if self._identity is not None or not all(p in outcomes for p in _IDENTITY_PATHS):
            return []
        view = EC2Metadata.from_reader(lambda path: _body(outcomes, path), self.metadata.client)
        identity: Dict[str, Optional[str]] = {}
        for name in _IDENTITY_KEYS:
            try:
                identity[name] = getattr(view, name)
            except (MalformedResponseError, LookupError):  # absent or odd: events say null
                identity[name] = None
        self._identity = identity
        return []

    def _notice(
        self,
        kind: str,
        path: str,
        outcomes: Dict[str, Body],
        when: Callable[[bytes, Dict[str, Any]], dt.datetime],
    ) -> List[Event]:
        """A JSON-document notice: reported once per distinct content."""
        body = _body(outcomes, path)
        document = parse.optional_json_object(path, body)
        if body is None or document is None:
            return []
        key = _canonical(document)
        seen = self._seen.setdefault(kind, set())
        if key in seen:
            return []
        seen.add(key)
        time_text = None
        try:
            time_text = parse.iso_utc(when(body, document))
        except MalformedResponseError as exc:
            _log().warning("%s; reporting it as IMDS gave it", exc)
        return [self._event(kind, document, time_text, path)]

    def _spot(self, outcomes: Dict[str, Body]) -> List[Event]:
        def when(body: bytes, document: Dict[str, Any]) -> dt.datetime:
            # The model's parser checks the action too.
            action = EC2Metadata.spot_instance_action.parse(SPOT_PATH, body)
            if action is None:  # not reached: the body is a JSON object
                raise MalformedResponseError(SPOT_PATH, "spot instance action")
            return action.time

        return self._notice(SPOT, SPOT_PATH, outcomes, when)

    def _rebalance(self, outcomes: Dict[str, Body]) -> List[Event]:
        def when(body: bytes, document: Dict[str, Any]) -> dt.datetime:
            return parse.timestamp(REBALANCE_PATH, document.get("noticeTime"))

        return self._notice(REBALANCE, REBALANCE_PATH, outcomes, when)

    @staticmethod
    def _maintenance_key(item: Any) -> str:
        if isinstance(item, dict) and isinstance(item.get("EventId"), str):
            return str(item["EventId"])
        return _canonical(item)

    def _maintenance_event(self, kind: str, item: Any, path: str) -> Event:
        when = None
        if isinstance(item, dict) and "NotBefore" in item:
            try:
                when = parse.iso_utc(parse.http_date(path, item["NotBefore"]))
            except MalformedResponseError as exc:
                _log().warning("%s; reporting the event as IMDS gave it", exc)
        return self._event(kind, item, when, path)

    def _maintenance(self, outcomes: Dict[str, Body]) -> List[Event]:
        scheduled = parse.json_list(SCHEDULED_PATH, _body(outcomes, SCHEDULED_PATH))
        # Not read: the scheduled list is as it was, and so is the history.
        history_read = HISTORY_PATH in outcomes
        history = (
            parse.json_list(HISTORY_PATH, _body(outcomes, HISTORY_PATH)) if history_read else []
        )
        events: List[Event] = []
        for item in scheduled:
            key, content = self._maintenance_key(item), _canonical(item)
            if self._scheduled.get(key) != content:  # new, or rescheduled
                self._scheduled[key] = content
                if MAINTENANCE_SCHEDULED in self.kinds:
                    events.append(
                        self._maintenance_event(MAINTENANCE_SCHEDULED, item, SCHEDULED_PATH)
                    )
        baseline = self._history is None
        seen = self._history if self._history is not None else set()
        for item in history:
            key = self._maintenance_key(item)
            if key in seen:
                continue
            seen.add(key)
            self._scheduled.pop(key, None)
            if baseline:
                continue  # past events, not news
            state = str(item.get("State", "")) if isinstance(item, dict) else ""
            kind = (
                MAINTENANCE_CANCELLED
                if state.lower().startswith("cancel")
                else MAINTENANCE_COMPLETED
            )
            if kind in self.kinds:
                events.append(self._maintenance_event(kind, item, HISTORY_PATH))
        if history_read:
            self._history = seen
        return events

    def _autoscaling(self, outcomes: Dict[str, Body]) -> List[Event]:
        state = parse.optional_text(LIFECYCLE_PATH, _body(outcomes, LIFECYCLE_PATH))
        if state is not None:
            state = state.strip()
        previous, self._lifecycle = self._lifecycle, state
        if state is None or state == previous:
            return []
        return [
            self._event(LIFECYCLE, {"previous": previous, "current": state}, None, LIFECYCLE_PATH)
        ]

    def _tags_changed(self, outcomes: Dict[str, Body]) -> List[Event]:
        listing = _body(outcomes, TAGS_PATH)
        if listing is None:
            return []  # tags in metadata are off (now): nothing to compare
        known = self._tags or {}
        current: Dict[str, str] = {}
        for name in _TAGS.entries(TAGS_PATH, listing):
            path = _TAGS.named(name)
            if path not in outcomes:  # a known key whose value is not due: as it was
                current[name] = known[name]
                continue
            value = _body(outcomes, path)
            if value is not None:  # None: deleted between listing and read
                current[name] = parse.decode(path, value)
        before, self._tags = self._tags, current
        if before is None or before == current:
            return []
        notice = {
            "added": {k: v for k, v in current.items() if k not in before},
            "removed": {k: v for k, v in before.items() if k not in current},
            "changed": {
                k: {"old": before[k], "new": v}
                for k, v in current.items()
                if k in before and before[k] != v
            },
        }
        return [self._event(TAGS, notice, None, TAGS_PATH)]
