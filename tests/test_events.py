"""The events watcher (library): what each poll reports, against the simulator over HTTP.

Polls are driven one by one with ``Watcher.poll()``: the diffing logic is
tested without any timing. The CLI's real-process tests are in test_watch_cli.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Iterator, List

import pytest

from ec2_metadata_core import EC2Metadata, parse
from ec2_metadata_core.errors import ConfigError, IMDSError, MalformedResponseError
from ec2_metadata_core.events import (
    HISTORY_PATH,
    KINDS,
    SPOT_PATH,
    TAG_VALUES_EVERY,
    TAGS_PATH,
    Event,
    Watcher,
    select_kinds,
)
from ec2_metadata_core.simulator import Simulator


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def watcher(sim: Simulator, **kwargs: Any) -> Watcher:
    kwargs.setdefault("interval", 0.05)
    kwargs.setdefault("tags_interval", 0)  # every poll: tests change tag values between polls
    return Watcher(EC2Metadata(endpoint=sim.url, attempts=1), **kwargs)


def kinds(events: List[Event]) -> List[str]:
    return [e["kind"] for e in events]


def test_first_poll_reports_what_is_pending_with_the_documented_shape(sim: Simulator) -> None:
    events = watcher(sim).poll()
    # The bundled instance has a rebalance recommendation, one scheduled
    # maintenance event and an ASG state; its history and tags are a baseline.
    assert sorted(kinds(events)) == [
        "autoscaling/lifecycle",
        "maintenance/scheduled",
        "rebalance/recommendation",
    ]
    for event in events:
        assert set(event) == {
            "kind",
            "notice",
            "time",
            "instance_id",
            "region",
            "availability_zone",
            "path",
        }
        assert event["kind"] in KINDS
        assert event["instance_id"] == "i-0123456789abcdef0"
        assert event["region"] == "eu-central-1"
        assert event["availability_zone"] == "eu-central-1b"
        assert json.loads(json.dumps(event)) == event  # JSON-safe
    by_kind = {e["kind"]: e for e in events}
    maintenance = by_kind["maintenance/scheduled"]
    assert maintenance["notice"]["EventId"] == "instance-event-0d59937288b749b32"
    assert maintenance["time"] == "2026-12-14T09:00:43Z"  # NotBefore, from "14 Dec 2026 ... GMT"
    assert maintenance["path"] == "meta-data/events/maintenance/scheduled"
    rebalance = by_kind["rebalance/recommendation"]
    assert rebalance["notice"] == {"noticeTime": "2026-11-26T09:12:31Z"}
    assert rebalance["time"] == "2026-11-26T09:12:31Z"
    lifecycle = by_kind["autoscaling/lifecycle"]
    assert lifecycle["notice"] == {"previous": None, "current": "InService"}
    assert lifecycle["time"] is None


def test_no_event_is_reported_twice_over_twenty_polls(sim: Simulator) -> None:
    w = watcher(sim)
    seen = w.poll()
    sim.schedule_spot_interruption(120, "terminate")
    sim.set_tag("Name", "web-02")
    for _ in range(20):
        seen.extend(w.poll())
    keys = [json.dumps(e, sort_keys=True) for e in seen]
    assert len(keys) == len(set(keys))
    assert kinds(seen).count("spot/interruption") == 1
    assert kinds(seen).count("tags/changed") == 1
    assert w.polls == 21 and w.failed_polls == 0


def test_a_spot_interruption_is_reported_once_per_distinct_notice(sim: Simulator) -> None:
    w = watcher(sim)
    w.poll()
    notice = sim.schedule_spot_interruption(90, "stop")
    (event,) = w.poll()
    assert event["kind"] == "spot/interruption"
    assert event["notice"] == notice == {"action": "stop", "time": notice["time"]}
    assert event["time"] == notice["time"]
    assert event["path"] == SPOT_PATH == "meta-data/spot/instance-action"
    assert w.poll() == []
    later = sim.schedule_spot_interruption(600, "terminate")
    assert [e["notice"] for e in w.poll()] == [later]
    sim.cancel_spot_interruption()
    assert w.poll() == []


def test_an_unexpected_spot_notice_is_reported_as_imds_gave_it(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    w = watcher(sim, kinds="spot")
    w.poll()
    sim.set(SPOT_PATH, {"$json": {"action": "reboot", "time": "soon"}, "$compact": True})
    with caplog.at_level(logging.WARNING, "ec2_metadata_core.events"):
        (event,) = w.poll()
    assert event["notice"] == {"action": "reboot", "time": "soon"}
    assert event["time"] is None
    assert "malformed spot action" in caplog.text


def test_maintenance_scheduled_rescheduled_cancelled_completed(sim: Simulator) -> None:
    w = watcher(sim, kinds="maintenance")
    assert kinds(w.poll()) == ["maintenance/scheduled"]  # the bundled one; history is old news
    first = sim.schedule_maintenance("instance-stop", in_seconds=3600)
    (event,) = w.poll()
    assert event["kind"] == "maintenance/scheduled"
    assert event["notice"] == first
    assert event["time"] == parse.iso_utc(parse.http_date("", first["NotBefore"]))
    moved = sim.schedule_maintenance("instance-stop", in_seconds=7200, event_id=first["EventId"])
    (event,) = w.poll()
    assert (event["kind"], event["notice"]) == ("maintenance/scheduled", moved)

    sim.cancel_maintenance(first["EventId"])
    (event,) = w.poll()
    assert event["kind"] == "maintenance/cancelled"
    assert event["notice"]["State"] == "canceled"
    assert event["notice"]["EventId"] == first["EventId"]
    assert event["path"] == "meta-data/events/maintenance/history"

    sim.complete_maintenance("instance-event-0d59937288b749b32")
    (event,) = w.poll()
    assert event["kind"] == "maintenance/completed"
    assert event["notice"]["Description"] == "[Completed] scheduled reboot"
    assert w.poll() == []


def test_an_event_scheduled_and_cancelled_between_polls_is_reported_as_cancelled(
    sim: Simulator,
) -> None:
    w = watcher(sim, kinds="maintenance")
    w.poll()
    gone = sim.schedule_maintenance()
    sim.cancel_maintenance(gone["EventId"])
    (event,) = w.poll()
    assert event["kind"] == "maintenance/cancelled"
    assert event["notice"]["EventId"] == gone["EventId"]


def test_the_history_is_read_when_the_scheduled_list_changed_else_every_tags_interval(
    sim: Simulator,
) -> None:
    history = "GET /latest/meta-data/events/maintenance/history"
    w = watcher(sim, kinds="maintenance", tags_interval=3600)
    assert kinds(w.poll()) == ["maintenance/scheduled"]
    sim.reset_stats()
    assert w.poll() == []
    assert history not in sim.stats.by_path  # nothing left the list: the history is as it was
    first = sim.schedule_maintenance()
    assert kinds(w.poll()) == ["maintenance/scheduled"]
    assert sim.stats.by_path[history] == 1  # the list changed: read it at once
    sim.cancel_maintenance(first["EventId"])
    (event,) = w.poll()
    assert (event["kind"], event["notice"]["EventId"]) == (
        "maintenance/cancelled",
        first["EventId"],
    )
    # An entry that never was in the list: found at the next re-read.
    sim.set(
        HISTORY_PATH,
        {
            "$json": [
                *json.loads(sim.read(HISTORY_PATH) or b"[]"),
                dict(first, EventId="e-2", State="completed"),
            ]
        },
    )
    assert w.poll() == []
    w._recheck_due = 0.0  # as if the hour had passed
    (event,) = w.poll()
    assert (event["kind"], event["notice"]["EventId"]) == ("maintenance/completed", "e-2")
    # After a failed poll the history is read again: the gap may have moved an event.
    sim.reset_stats()
    failing = sim.add_fault(path="/latest/meta-data/events/maintenance/scheduled", status=500)
    with pytest.raises(IMDSError):
        w.poll()
    sim.faults.remove(failing)
    assert w.poll() == []
    assert sim.stats.by_path[history] == 1  # by the poll after the failed one


def test_kinds_select_what_is_read_and_reported(sim: Simulator) -> None:
    w = watcher(sim, kinds=["maintenance/cancelled"])
    assert w.poll() == []  # the scheduled event is not of the chosen kind
    sim.reset_stats()
    w.poll()
    read = {path for path in sim.stats.by_path if path.startswith("GET ")}
    assert read == {
        "GET /latest/meta-data/events/maintenance/scheduled",
        "GET /latest/meta-data/events/maintenance/history",
    }
    event_id = sim.schedule_maintenance()["EventId"]
    assert w.poll() == []
    sim.cancel_maintenance(event_id)
    assert kinds(w.poll()) == ["maintenance/cancelled"]


def test_a_poll_reads_each_changing_path_once_and_identity_only_at_first(
    sim: Simulator,
) -> None:
    w = watcher(sim)
    w.poll()
    sim.reset_stats()
    w.poll()
    stats = sim.stats
    tags = [p for p in stats.by_path if p.startswith("GET /latest/meta-data/tags/instance/")]
    assert len(tags) == 1 + 6  # the listing and the six values, nothing else of tags
    assert stats.requests == 5 + len(tags)
    assert set(stats.by_path.values()) == {1}
    assert not any("instance-id" in p or "identity" in p for p in stats.by_path)
    assert stats.token_requests == 0  # one token for the whole watch


def test_tag_changes_are_diffed(sim: Simulator) -> None:
    w = watcher(sim, kinds="tags")
    assert w.poll() == []  # tags are a baseline
    sim.set_tag("Name", "web-02")
    sim.delete_tag("Role")
    sim.set_tag("owner@team", "ops")
    (event,) = w.poll()
    assert event["kind"] == "tags/changed"
    assert event["path"] == TAGS_PATH
    assert event["time"] is None
    assert event["notice"] == {
        "added": {"owner@team": "ops"},
        "removed": {"Role": "web"},
        "changed": {"Name": {"old": "web-01", "new": "web-02"}},
    }
    assert w.poll() == []


def test_tag_values_are_read_again_every_tags_interval_and_new_keys_at_once(
    sim: Simulator,
) -> None:
    w = watcher(sim, kinds="tags", tags_interval=3600)
    w.poll()
    sim.reset_stats()
    sim.set_tag("Name", "not-read-yet")
    sim.set_tag("Owner", "ops")
    sim.delete_tag("Role")
    (event,) = w.poll()
    assert event["notice"] == {"added": {"Owner": "ops"}, "removed": {"Role": "web"}, "changed": {}}
    assert sorted(sim.stats.by_path) == [
        "GET /latest/meta-data/tags/instance/",
        "GET /latest/meta-data/tags/instance/Owner",
    ]
    w.tags_interval = 0
    w._recheck_due = 0.0  # as if the hour had passed
    (event,) = w.poll()
    assert event["notice"]["changed"] == {"Name": {"old": "web-01", "new": "not-read-yet"}}


def test_by_default_a_changed_tag_value_shows_within_two_polling_intervals(
    sim: Simulator,
) -> None:
    w = watcher(sim, kinds="tags", interval=0.2, tags_interval=None)
    assert w.tags_interval == TAG_VALUES_EVERY * w.interval
    w.poll()
    sim.set_tag("Name", "web-02")
    reported = []
    for _ in range(TAG_VALUES_EVERY):  # one watch's polls, on its rhythm
        time.sleep(w.interval)
        reported += w.poll()
    assert [e["notice"]["changed"] for e in reported] == [
        {"Name": {"old": "web-01", "new": "web-02"}}
    ]


def test_tags_off_are_read_as_one_listing_and_never_reported() -> None:
    with Simulator(tags_enabled=False) as sim:
        w = watcher(sim, kinds="tags")
        assert w.poll() == []
        sim.set_tag("Name", "changed")
        sim.reset_stats()
        assert w.poll() == []
        assert list(sim.stats.by_path) == ["GET /latest/meta-data/tags/instance/"]


def test_lifecycle_changes_carry_the_previous_state(sim: Simulator) -> None:
    w = watcher(sim, kinds="autoscaling")
    w.poll()
    sim.set_lifecycle_state("Warmed:Stopped")
    sim.set_lifecycle_state("Terminated")  # two changes between polls: the last one counts
    (event,) = w.poll()
    assert event["notice"] == {"previous": "InService", "current": "Terminated"}
    sim.set_lifecycle_state(None)
    assert w.poll() == []  # outside an ASG: no notice


def test_an_outage_is_one_warning_and_loses_nothing(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    w = watcher(sim)
    w.poll()
    sim.stop()
    sim.schedule_spot_interruption(120)  # happens while IMDS does not answer
    sim.set_tag("Name", "during-outage")
    with caplog.at_level(logging.INFO, "ec2_metadata_core.events"):
        for _ in range(3):
            with pytest.raises(IMDSError):
                w.poll()
        sim.start()
        events = w.poll()
    assert sorted(kinds(events)) == ["spot/interruption", "tags/changed"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "still watching" in warnings[0].getMessage()
    assert any("answers again" in r.getMessage() for r in caplog.records)
    assert w.failed_polls == 3
    assert w.poll() == []


def test_a_partly_failed_poll_keeps_the_events_it_could_read(sim: Simulator) -> None:
    w = watcher(sim)
    w.poll()
    # Every copy answers 500 until the fault is removed: with times=1, a copy the client
    # resends while the first is slow to answer (a busy machine) gets the 200 and wins.
    failing = sim.add_fault(path="/latest/meta-data/tags/instance/*", status=500)
    sim.schedule_spot_interruption(120)
    with pytest.raises(IMDSError):
        w.poll()
    sim.faults.remove(failing)
    assert kinds(w.poll()) == ["spot/interruption"]


def test_an_expired_token_mid_watch_is_renewed(sim: Simulator) -> None:
    w = watcher(sim)
    w.poll()
    sim.expire_tokens()
    sim.schedule_spot_interruption(120)
    assert kinds(w.poll()) == ["spot/interruption"]
    assert w.failed_polls == 0


def test_watch_yields_events_and_stops_when_asked(sim: Simulator) -> None:
    w = watcher(sim, kinds="spot")
    stop = threading.Event()
    got: List[Event] = []
    sim.schedule_spot_interruption(120)

    def consume() -> None:
        for event in w.watch(stop):
            got.append(event)
            stop.set()

    thread = threading.Thread(target=consume)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert kinds(got) == ["spot/interruption"]


def test_watch_outlives_an_outage(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    w = watcher(sim, kinds="spot")
    sim.stop()
    stop = threading.Event()
    got: List[Event] = []

    def consume() -> None:
        for event in w.watch(stop):
            got.append(event)
            stop.set()

    with caplog.at_level(logging.WARNING, "ec2_metadata_core.events"):
        thread = threading.Thread(target=consume)
        thread.start()
        while w.failed_polls < 3:
            thread.join(0.05)
        sim.schedule_spot_interruption(60)
        sim.start()
        thread.join(30)
    assert not thread.is_alive()
    assert kinds(got) == ["spot/interruption"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, set(KINDS)),
        ("spot", {"spot/interruption"}),
        (
            "maintenance, tags/changed",
            {k for k in KINDS if k.startswith("maintenance")} | {"tags/changed"},
        ),
        (["rebalance/recommendation"], {"rebalance/recommendation"}),
    ],
)
def test_select_kinds(spec: Any, expected: Any) -> None:
    assert select_kinds(spec) == expected


@pytest.mark.parametrize("spec", ["spots", "", "spot/", ["maintenance/rescheduled"]])
def test_unknown_kinds_are_a_config_error_naming_the_kinds(spec: Any) -> None:
    with pytest.raises(ConfigError, match="kind"):
        select_kinds(spec)


@pytest.mark.parametrize("interval", [0, -1, "soon", float("nan")])
def test_a_bad_interval_is_a_config_error(interval: Any) -> None:
    with pytest.raises(ConfigError, match="interval"):
        Watcher(EC2Metadata(endpoint="http://127.0.0.1:9"), interval=interval)


def test_maintenance_times_parse_as_imds_writes_them() -> None:
    assert parse.iso_utc(parse.http_date("p", "21 Jan 2019 09:00:43 GMT")) == "2019-01-21T09:00:43Z"
    for bad in ("2019-01-21", "", None, "32 Foo 2019 99:00:00 GMT"):
        with pytest.raises(MalformedResponseError):
            parse.http_date("p", bad)


def test_nothing_is_yielded_after_stop_and_nothing_is_lost(sim: Simulator) -> None:
    # The README's loop stops at the spot notice; one poll held a second event,
    # which watch() yielded after stop.set() (issue 18).
    sim.schedule_spot_interruption(120, "terminate")
    sim.recommend_rebalance()
    source = watcher(sim, kinds=["spot", "rebalance"])
    stop = threading.Event()
    seen = []
    for event in source.watch(stop):
        seen.append(event["kind"])
        stop.set()
    assert len(seen) == 1
    assert len(source.poll()) == 1  # the other one, first thing at the next poll
