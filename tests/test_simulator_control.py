"""Live control of a running simulator: Python methods, /_simulator/ endpoint, `simulate ctl`."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any, Dict, Iterator

import pytest
from test_cli import run as cli  # the CLI as a real process

from ec2_metadata_core import EC2Metadata, parse
from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.simulator.ctl import send


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def metadata(sim: Simulator) -> EC2Metadata:
    return EC2Metadata(endpoint=sim.url)


def post(url: str, method: str = "POST") -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_spot_interruption_is_posted_with_its_time_and_withdrawn(sim: Simulator) -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    notice = sim.schedule_spot_interruption(30, "terminate")
    action = metadata(sim).spot_instance_action
    assert action is not None and action.action == "terminate"
    assert parse.iso_utc(action.time) == notice["time"]
    assert action.time >= before + dt.timedelta(seconds=30)
    assert metadata(sim).spot_termination_time == notice["time"]
    sim.schedule_spot_interruption(30, "stop")
    assert metadata(sim).spot_termination_time is None  # terminate only, as on EC2
    sim.cancel_spot_interruption()
    assert metadata(sim).spot_instance_action is None


def test_maintenance_events_use_imds_formats_and_move_to_history(sim: Simulator) -> None:
    event = sim.schedule_maintenance("instance-retirement", in_seconds=60, duration=600)
    start = parse.http_date("", event["NotBefore"])
    assert parse.http_date("", event["NotAfter"]) - start == dt.timedelta(seconds=600)
    assert event["Description"] == "scheduled retirement"
    assert event["EventId"].startswith("instance-event-") and len(event["EventId"]) == 32
    assert event in metadata(sim).events_maintenance_scheduled
    cancelled = sim.cancel_maintenance(event["EventId"])
    assert cancelled["State"] == "canceled"
    assert cancelled["Description"] == "[Canceled] scheduled retirement"
    md = metadata(sim)
    assert event["EventId"] not in [e["EventId"] for e in md.events_maintenance_scheduled]
    assert md.events_maintenance_history[-1] == cancelled
    with pytest.raises(ValueError, match="no scheduled maintenance event"):
        sim.complete_maintenance(event["EventId"])


def test_tags_and_lifecycle_change_live(sim: Simulator) -> None:
    sim.set_tag("cost.center", "cc-1")
    sim.delete_tag("Role")
    sim.set_lifecycle_state("Warmed:Hibernated")
    md = metadata(sim)
    assert md.tags["cost.center"] == "cc-1"
    assert "Role" not in md.tags
    assert md.autoscaling_target_lifecycle_state == "Warmed:Hibernated"
    sim.set_lifecycle_state(None)
    assert metadata(sim).autoscaling_target_lifecycle_state is None
    with pytest.raises(ValueError, match="no tag"):
        sim.delete_tag("Role")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.schedule_spot_interruption(30, "reboot"), "action must be one of"),
        (lambda s: s.schedule_spot_interruption(-1), "in_seconds"),
        (lambda s: s.schedule_maintenance("meteor-strike"), "code must be one of"),
        (lambda s: s.set_lifecycle_state("two\nlines"), "one line"),
        (lambda s: s.set_tag("a/b", "x"), "cannot appear in instance metadata"),
    ],
)
def test_bad_control_arguments_say_what_is_wrong(sim: Simulator, call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(sim)


def test_the_endpoint_runs_operations_without_counting_as_imds_requests(sim: Simulator) -> None:
    sim.reset_stats()
    result = send(sim.url, "tag", {"key": "Name", "value": "via-http"})
    assert result is None
    notice = send(sim.url, "rebalance", {})
    assert set(notice) == {"noticeTime"}
    assert sim.stats.requests == 0
    assert metadata(sim).tags["Name"] == "via-http"


@pytest.mark.parametrize(
    ("path", "method", "status", "message"),
    [
        ("/_simulator/bogus", "POST", 404, "unknown control operation 'bogus'"),
        ("/_simulator/tag", "GET", 405, "use POST"),
        ("/_simulator/tag?args=%7B%7D", "POST", 400, "missing 2 required positional"),
        ("/_simulator/tag?args=%5B%5D", "POST", 400, "args must be a JSON object"),
        (
            "/_simulator/delete?args=%7B%22path%22%3A%22meta-data%2Fnope%22%7D",
            "POST",
            400,
            "absent",
        ),
    ],
)
def test_the_endpoint_refuses_bad_requests_in_one_line(
    sim: Simulator, path: str, method: str, status: int, message: str
) -> None:
    code, body = post(sim.url + path, method)
    assert code == status
    assert message in body["error"] and "\n" not in body["error"]


def test_the_endpoint_serves_loopback_peers_only_and_can_be_turned_off(sim: Simulator) -> None:
    status, body = sim._control("POST", "/_simulator/rebalance", ("192.0.2.7", 40000))
    assert status == 403 and b"loopback" in body
    assert sim.read("meta-data/events/recommendations/rebalance") is not None  # untouched
    sim.control = False
    code, _ = post(sim.url + "/_simulator/rebalance")
    assert code == 404


def run_ctl(sim: Simulator, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("simulate", "ctl", *args, endpoint=sim.url)


def test_ctl_changes_a_running_simulator_from_the_shell(sim: Simulator) -> None:
    proc = run_ctl(sim, "spot-interruption", "--in", "45", "--action", "hibernate")
    assert proc.returncode == 0, proc.stderr
    notice: Dict[str, str] = json.loads(proc.stdout)
    assert notice["action"] == "hibernate"
    got = cli("get", "spot_instance_action", endpoint=sim.url)
    assert json.loads(got.stdout) == notice
    proc = cli("simulate", "set", "meta-data/tags/instance/Name", "web-02", endpoint=sim.url)
    assert proc.returncode == 0 and proc.stdout == ""
    assert cli("get", "tags.Name", endpoint=sim.url).stdout == "web-02\n"
    proc = cli(
        "simulate",
        "set",
        "meta-data/spot/instance-action",
        '{"action": "stop", "time": "2026-11-28T08:22:00Z"}',
        "--json",
        endpoint=sim.url,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        sim.read("meta-data/spot/instance-action")
        == b'{"action": "stop", "time": "2026-11-28T08:22:00Z"}'
    )
    assert cli("simulate", "delete", "meta-data/public-ipv4", endpoint=sim.url).returncode == 0
    assert metadata(sim).public_ipv4 is None
    event = json.loads(run_ctl(sim, "maintenance", "--code", "instance-stop").stdout)
    proc = run_ctl(sim, "complete-maintenance", event["EventId"])
    assert json.loads(proc.stdout)["State"] == "completed"
    assert run_ctl(sim, "lifecycle", "Terminated").returncode == 0
    assert metadata(sim).autoscaling_target_lifecycle_state == "Terminated"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["untag", "Nope"], 2, "untag: no tag 'Nope'"),
        (["lifecycle"], 2, "give a STATE or --remove"),
        (["spot-interruption", "--action", "reboot"], 2, "invalid choice"),
        (["set", "meta-data/x", "{", "--json"], 2, "VALUE is not JSON"),
        (["--endpoint", "http://169.254.169.254", "rebalance"], 2, "not a simulator on loopback"),
        (["--endpoint", "http://127.0.0.1:9", "rebalance"], 1, "cannot reach the simulator"),
    ],
)
def test_ctl_errors_are_one_line(sim: Simulator, args: Any, code: int, message: str) -> None:
    proc = run_ctl(sim, *args)
    assert proc.returncode == code
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert message in line


def test_simulate_can_post_a_spot_interruption_at_start(tmp_path: Any) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ec2_metadata_core",
            "simulate",
            "--port",
            "0",
            "--spot-interruption-in",
            "30",
            "--spot-action",
            "stop",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        action = EC2Metadata(endpoint=url).spot_instance_action
        assert action is not None and action.action == "stop"
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_the_pytest_fixture_rehearses_notices_for_code_under_test(
    imds_simulator: Simulator,
) -> None:
    from ec2_metadata_core.events import Watcher

    watcher = Watcher(kinds="spot")  # the AWS settings, which the fixture points at it
    assert watcher.poll() == []
    imds_simulator.schedule_spot_interruption(in_seconds=120)
    (event,) = watcher.poll()
    assert event["kind"] == "spot/interruption"
    imds_simulator.cancel_spot_interruption()
    assert watcher.poll() == []


def test_every_control_line_of_the_readme_runs(sim: Simulator) -> None:
    from test_readme_examples import CLI, shell_lines

    controls = [
        shlex.split(re.sub(r"\s+#.*$", "", line)[len(CLI) :])
        for line in shell_lines()
        if re.match(CLI + r" simulate (ctl|set|delete) ", line)
    ]
    assert len(controls) >= 10
    for words in controls:  # in README order: a maintenance event is scheduled before its end
        proc = cli(*words, endpoint=sim.url)
        assert proc.returncode == 0, (words, proc.stderr)
        assert proc.stderr == ""
