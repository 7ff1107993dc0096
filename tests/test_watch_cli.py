"""`ec2-metadata-core watch` as a user runs it: a real process whose stdout lines are read live.

Each notice is posted on a running simulator (in this process, or with
`simulate ctl` from another process) and must come out of the watcher as one
JSON line. Waits are bounded only to fail a hung test; nothing asserts a time.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any, Callable, Dict, Iterator, List

import pytest
from test_cli import run as cli  # the CLI as a real process

from ec2_metadata_core.simulator import Simulator

PATIENCE = 30.0  # seconds before a missing line fails the test (polls are 0.2 s apart)
INTERVAL = "0.2"


class WatchProcess:
    """`watch` in a subprocess; its stdout and stderr lines arrive in queues."""

    def __init__(self, sim: Simulator, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ec2_metadata_core", "watch", "--endpoint", sim.url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: List[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out.put)),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err.append)),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: IO[str], put: Any) -> None:
        for line in stream:
            put(line)

    def event(self) -> Dict[str, Any]:
        """The next line, which must be one JSON object."""
        try:
            line = self.out.get(timeout=PATIENCE)
        except queue.Empty:
            pytest.fail("no event from the watcher; stderr: {}".format("".join(self.err)))
        assert line.endswith("\n")
        event = json.loads(line)
        assert isinstance(event, dict)
        return event

    def events(self, count: int) -> List[Dict[str, Any]]:
        return [self.event() for _ in range(count)]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(PATIENCE)
        for thread in self._threads:
            thread.join(PATIENCE)
        return code

    def remaining(self) -> List[Dict[str, Any]]:
        found = []
        while not self.out.empty():
            found.append(json.loads(self.out.get_nowait()))
        return found


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@pytest.fixture
def quiet_sim() -> Iterator[Simulator]:
    """An instance with no pending notice, so every line a test reads is its own."""
    with Simulator() as simulator:
        simulator.cancel_rebalance()
        simulator.set("meta-data/events/maintenance/scheduled", {"$json": []})
        simulator.set_lifecycle_state(None)
        yield simulator


def ctl(sim: Simulator, *args: str) -> str:
    proc = cli("simulate", "ctl", *args, endpoint=sim.url)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_each_notice_reaches_the_watcher(quiet_sim: Simulator) -> None:
    sim = quiet_sim
    watch = WatchProcess(sim, "--interval", INTERVAL, "--tags-interval", "0")
    try:
        spot = json.loads(ctl(sim, "spot-interruption", "--in", "30", "--action", "stop"))
        event = watch.event()
        assert (event["kind"], event["notice"], event["time"]) == (
            "spot/interruption",
            spot,
            spot["time"],
        )
        assert event["instance_id"] == "i-0123456789abcdef0"

        ctl(sim, "rebalance")
        assert watch.event()["kind"] == "rebalance/recommendation"

        scheduled = json.loads(ctl(sim, "maintenance", "--code", "instance-reboot"))
        event = watch.event()
        assert (event["kind"], event["notice"]) == ("maintenance/scheduled", scheduled)
        ctl(sim, "cancel-maintenance", scheduled["EventId"])
        event = watch.event()
        assert (event["kind"], event["notice"]["EventId"]) == (
            "maintenance/cancelled",
            scheduled["EventId"],
        )
        other = sim.schedule_maintenance("system-maintenance")  # the fixture's Python API
        assert watch.event()["kind"] == "maintenance/scheduled"
        sim.complete_maintenance(other["EventId"])
        assert watch.event()["kind"] == "maintenance/completed"

        ctl(sim, "lifecycle", "Warmed:Running")
        event = watch.event()
        assert event["notice"] == {"previous": None, "current": "Warmed:Running"}

        ctl(sim, "tag", "Name", "web-02")
        event = watch.event()
        assert event["kind"] == "tags/changed"
        assert event["notice"]["changed"] == {"Name": {"old": "web-01", "new": "web-02"}}
        cli("simulate", "set", "meta-data/tags/instance/Owner", "ops", endpoint=sim.url)
        assert watch.event()["notice"]["added"] == {"Owner": "ops"}
    finally:
        code = watch.stop()
    assert code == 0
    assert watch.remaining() == []  # nothing twice
    assert watch.err == []


def wait_until(condition: Callable[[], bool], watch: WatchProcess) -> None:
    """Pause until ``condition`` holds (polls of the watcher, seen by the simulator)."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if watch.proc.poll() is not None:
            pytest.fail("watch ended early: {}".format("".join(watch.err)))
        if time.monotonic() > deadline:
            pytest.fail("the watcher did not poll as expected")
        time.sleep(0.02)


def spot_reads(sim: Simulator) -> int:
    return sim.stats.by_path["GET /latest/meta-data/spot/instance-action"]


def test_twenty_polls_print_each_event_once(sim: Simulator) -> None:
    watch = WatchProcess(sim, "--interval", INTERVAL)
    try:
        first = watch.events(3)  # what the bundled instance has pending
        sim.schedule_spot_interruption(120)
        spot = watch.event()
        start = spot_reads(sim)
        wait_until(lambda: spot_reads(sim) >= start + 20, watch)
    finally:
        code = watch.stop()
    assert code == 0
    assert sorted(e["kind"] for e in first) == [
        "autoscaling/lifecycle",
        "maintenance/scheduled",
        "rebalance/recommendation",
    ]
    assert spot["kind"] == "spot/interruption"
    assert watch.remaining() == []


def test_an_expiring_token_and_a_three_poll_outage_lose_nothing(quiet_sim: Simulator) -> None:
    sim = quiet_sim
    sim.token_ttl_cap = 1  # every token dies within a second: several renewals per watch
    sim.set_lifecycle_state("InService")
    watch = WatchProcess(sim, "--interval", INTERVAL, "--attempts", "2", "--tags-interval", "0")
    try:
        assert watch.event()["kind"] == "autoscaling/lifecycle"  # the first poll is done
        sim.set_tag("Name", "before")
        assert watch.event()["kind"] == "tags/changed"
        outage = sim.add_fault(path="/latest/meta-data/*", status=503)
        sim.schedule_spot_interruption(120)  # posted during the outage
        sim.set_tag("Name", "during")
        start = spot_reads(sim)
        # The outage outlasts a poll's retries (its warning is out), then two more polls.
        wait_until(lambda: bool(watch.err), watch)
        failed_at = spot_reads(sim)
        wait_until(lambda: spot_reads(sim) >= failed_at + 2, watch)
        assert failed_at > start
        sim.faults.remove(outage)
        got = {e["kind"]: e for e in watch.events(2)}
        wait_until(lambda: sim.stats.token_requests >= 2, watch)
    finally:
        code = watch.stop()
    assert code == 0
    assert set(got) == {"spot/interruption", "tags/changed"}
    assert got["tags/changed"]["notice"]["changed"] == {"Name": {"old": "before", "new": "during"}}
    assert watch.remaining() == []
    assert len(watch.err) == 1, watch.err
    assert "WARNING" in watch.err[0] and "503" in watch.err[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_cleanly(sim: Simulator, sig: int) -> None:
    watch = WatchProcess(sim, "--interval", INTERVAL)
    watch.events(3)
    assert watch.stop(sig) == 0
    assert watch.err == []


def test_exit_on_stops_with_status_4_after_printing_the_event(quiet_sim: Simulator) -> None:
    quiet_sim.set_lifecycle_state("InService")
    watch = WatchProcess(quiet_sim, "--interval", INTERVAL, "--exit-on", "spot")
    assert watch.event()["kind"] == "autoscaling/lifecycle"  # not an --exit-on kind
    quiet_sim.schedule_spot_interruption(120, "hibernate")
    assert watch.event()["notice"]["action"] == "hibernate"
    assert watch.proc.wait(PATIENCE) == 4
    watch.stop()
    assert watch.err == []


def test_once_prints_what_is_pending_and_exit_status_says_if_a_spot_notice_is(
    sim: Simulator,
) -> None:
    proc = cli("watch", "--once", "--exit-on", "spot/interruption", endpoint=sim.url)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 3
    sim.schedule_spot_interruption(120)
    proc = cli(
        "watch", "--once", "--kinds", "spot", "--exit-on", "spot/interruption", endpoint=sim.url
    )
    assert proc.returncode == 4, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert json.loads(line)["kind"] == "spot/interruption"
    assert proc.stderr == ""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--kinds", "spots"], 2, "unknown event kind 'spots'"),
        (["--exit-on", "nope"], 2, "unknown event kind 'nope'"),
        (["--interval", "0"], 2, "interval must be"),
        (["--interval", "soon"], 2, "invalid float value"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    sim: Simulator, args: List[str], code: int, message: str
) -> None:
    proc = cli("watch", "--once", *args, endpoint=sim.url)
    assert proc.returncode == code
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert message in line


def test_once_without_imds_is_one_line_and_exit_1() -> None:
    proc = cli("watch", "--once", "--endpoint", "http://127.0.0.1:9", "--attempts", "1")
    assert proc.returncode == 1
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert "cannot reach IMDS" in line


def test_output_that_cannot_be_written_is_one_line_and_exit_1(sim: Simulator) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "ec2_metadata_core", "watch", "--once", "--endpoint", sim.url],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert "cannot write the output" in line


def test_once_prints_what_it_could_read_before_the_error(sim: Simulator) -> None:
    sim.add_fault(path="/latest/meta-data/tags/instance/", status=500)
    sim.schedule_spot_interruption(120)
    proc = cli("watch", "--once", "--kinds", "spot,tags", "--attempts", "1", endpoint=sim.url)
    assert proc.returncode == 1
    (line,) = proc.stdout.splitlines()
    assert json.loads(line)["kind"] == "spot/interruption"
    (error,) = proc.stderr.splitlines()
    assert "500" in error


HOSTILE_TAG = "{{ lookup('pipe', 'id') }}\n$(touch /tmp/x); `id` | rm -rf ~ 'quote\" {% raw %}"


def test_a_hostile_tag_is_one_json_line_of_its_own_text_and_a_huge_one_a_failed_poll(
    quiet_sim: Simulator,
) -> None:
    from ec2_metadata_core.bounds import MAX_BODY

    sim = quiet_sim
    watch = WatchProcess(sim, "--interval", INTERVAL, "--tags-interval", "0", "--kinds", "tags")
    try:
        listing = "GET /latest/meta-data/tags/instance/"
        wait_until(lambda: listing in sim.stats.by_path, watch)  # the first poll: a baseline
        sim.set_tag("Name", HOSTILE_TAG)
        event = watch.event()  # one line: the newline inside travels escaped
        assert event["notice"]["changed"] == {"Name": {"old": "web-01", "new": HOSTILE_TAG}}
        # A body past the bound fails the poll (one warning line), never a
        # value held whole; the watch goes on and reports once it is sane.
        sim.set("meta-data/tags/instance/Name", "x" * (MAX_BODY + 1))
        sim.set_tag("Role", "after")
        wait_until(lambda: any("still watching" in line for line in watch.err), watch)
        sim.set_tag("Name", "sane")
        event = watch.event()
        assert event["notice"]["changed"] == {
            "Name": {"old": HOSTILE_TAG, "new": "sane"},
            "Role": {"old": "web", "new": "after"},
        }
    finally:
        assert watch.stop() == 0
    assert [line for line in watch.err if "Traceback" in line] == []
    assert len([line for line in watch.err if "still watching" in line]) == 1
