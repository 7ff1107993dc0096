"""What the ``ec2_metadata`` beacon does: beacon config -> one Watcher per process -> events.

Salt calls the beacon function every ``interval`` seconds and may rebuild the
beacon loader (a pillar refresh does), so the watchers live here, in a module
imported once per minion process: a notice reported in one call is never
reported again by a later one. Each watcher reads through the minion's
per-process IMDS client (the one the ``ec2`` grain uses), so beacon and grains
share one session token.

Each event's ``tag`` is its kind; Salt appends it to
``salt/beacon/<minion id>/<beacon name>/``, so a spot notice arrives on the
master's bus as ``salt/beacon/web-1/ec2_metadata/spot/interruption`` with the
event (``kind``, ``notice``, ``time``, ``instance_id``, ``region``,
``availability_zone``, ``path``) as its data, plus the ``id`` Salt adds.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, FrozenSet, List, Mapping, NamedTuple, Tuple

from ec2_metadata_core import config
from ec2_metadata_core.errors import ConfigError, IMDSError
from ec2_metadata_core.events import (
    DEFAULT_INTERVAL,
    MAX_INTERVAL,
    MIN_INTERVAL,
    Watcher,
    select_kinds,
)
from ec2_metadata_core.model import EC2Metadata

from . import ec2
from .options import connection_settings, from_minion_opts

log = logging.getLogger(__name__)

NAME = "ec2_metadata"
# This beacon's own option; the rest are Salt's, read by Salt's beacon loop.
OWN_OPTIONS = ("kinds",)
SALT_OPTIONS = (
    "interval",
    "enabled",
    "run_once",
    "disable_during_state_run",
    "beacon_module",
    "_beacon_name",
)


class BeaconConfig(NamedTuple):
    name: str
    kinds: FrozenSet[str]
    interval: float


def parse(beacon_config: Any) -> BeaconConfig:
    """The beacon's list-of-dicts config, checked; ``ConfigError`` says what is wrong."""
    if not isinstance(beacon_config, list):
        raise ConfigError(
            "the {} beacon config must be a list of one-key mappings, such as "
            "[{{interval: 5}}], not {}".format(NAME, type(beacon_config).__name__)
        )
    merged: Dict[str, Any] = {}
    for item in beacon_config:
        if not isinstance(item, Mapping):
            raise ConfigError(
                "each item of the {} beacon config must be a mapping, not {!r}".format(NAME, item)
            )
        merged.update(item)
    known = OWN_OPTIONS + SALT_OPTIONS
    unknown = sorted(str(key) for key in merged if key not in known)
    if unknown:
        raise ConfigError(
            "{} is not an option of the {} beacon (known: {})".format(
                unknown[0], NAME, ", ".join(known[:-1])
            )
        )
    interval = merged.get("interval")
    return BeaconConfig(
        name=str(merged.get("_beacon_name") or NAME),
        kinds=select_kinds(merged.get("kinds")),
        interval=DEFAULT_INTERVAL
        if interval is None
        else config.parse_number("interval", interval, float, MIN_INTERVAL, MAX_INTERVAL),
    )


def validate(beacon_config: Any, opts: Mapping[str, Any]) -> Tuple[bool, str]:
    """Salt's ``validate``: the beacon's own config and the minion's ``ec2_metadata:``."""
    try:
        parse(beacon_config)
        connection_settings(from_minion_opts(opts))
    except ConfigError as exc:
        return False, str(exc)
    return True, "valid {} beacon configuration".format(NAME)


_watchers: Dict[Tuple[str, config.Settings, FrozenSet[str]], Watcher] = {}
_watchers_lock = threading.Lock()


def _watcher_for(beacon: BeaconConfig, settings: config.Settings) -> Watcher:
    key = (beacon.name, settings, beacon.kinds)
    with _watchers_lock:
        watcher = _watchers.get(key)
        if watcher is None:
            client = ec2.endpoint_for(settings).client
            watcher = _watchers[key] = Watcher(
                EC2Metadata(client=client), interval=beacon.interval, kinds=beacon.kinds
            )
        return watcher


def forget_watchers() -> None:
    """Drop the per-process watchers and what they reported (tests use this)."""
    with _watchers_lock:
        _watchers.clear()


def beacon(beacon_config: Any, opts: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Salt's ``beacon``: one poll; an event dict (``tag`` = kind) per new notice.

    Off EC2 (the grain's remembered probe says so) and with ``ec2_metadata:
    enabled: false`` it returns nothing. A failed poll returns nothing too:
    the watcher logs one warning per outage and reports what happened
    meanwhile once IMDS answers.
    """
    try:
        parsed = parse(beacon_config)
        options = from_minion_opts(opts)
        if not options.enabled:
            return []
        settings = connection_settings(options)
    except ConfigError as exc:
        log.warning("%s beacon: invalid setting: %s", NAME, exc)
        return []
    if settings.disabled or not ec2.present(options, settings, opts.get("cachedir")):
        return []
    try:
        events = _watcher_for(parsed, settings).poll()
    except IMDSError:
        return []  # the watcher logged the outage (once) and keeps its state
    return [dict(event, tag=event["kind"]) for event in events]
