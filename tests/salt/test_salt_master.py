"""A real salt-master with two minions on 127.0.0.1, each on its own simulated instance.

``salt -G`` on the availability zone and on tags must reach exactly the right
minions, also for tag keys that contain ``:``, and a grains refresh must pick
up a tag that changed while the minion runs. The ``ec2_metadata`` beacon on
web-1 must put a spot notice on the master's bus once, and the reactor example
of salt_grains/README.md must drain the minion.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Tuple

import pytest
import yaml
from readme_support import readme_block

from ec2_metadata_core.simulator import Simulator

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "salt_grains" / "README.md"
SPOT_PATH = "meta-data/spot/instance-action"
SPOT_TAG = "salt/beacon/web-1/ec2_metadata/spot/interruption"


class Fleet(NamedTuple):
    master: Any
    minions: List[Any]
    cli: Any
    web: Simulator
    db: Simulator
    drained: Path  # what the README's drain state writes on web-1


def reactor_example(root: Path, drained: Path) -> List[Dict[str, List[str]]]:
    """The README's reactor config, reactor file and drain state, under ``root``."""
    (root / "reactor").mkdir()
    (root / "salt").mkdir()
    reactor_file = root / "reactor" / "spot-drain.sls"
    reactor_file.write_text(readme_block(README, "# /srv/reactor/spot-drain.sls"))
    drain = readme_block(README, "# /srv/salt/drain.sls")
    (root / "salt" / "drain.sls").write_text(drain.replace("/run/ec2-spot-drain", str(drained)))
    reactor = yaml.safe_load(readme_block(README, "# /etc/salt/master.d/reactor.conf"))
    text = yaml.safe_dump(reactor["reactor"])
    text = text.replace("/srv/reactor/spot-drain.sls", str(reactor_file))
    config: List[Dict[str, List[str]]] = yaml.safe_load(text)
    return config


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    _salt_factories_config: Dict[str, Any],
    event_listener: Any,
) -> Iterator[Fleet]:
    from saltfactories.manager import FactoriesManager

    settings = dict(_salt_factories_config)
    settings["root_dir"] = tmp_path_factory.mktemp("salt-root")
    factories = FactoriesManager(event_listener=event_listener, **settings)
    web = Simulator().start()  # eu-central-1b, Role=web, aws:autoscaling:groupName=web-asg
    db = Simulator().start()
    db.set("meta-data/placement/availability-zone", "eu-central-1a")
    db.set("meta-data/tags/instance/Role", "db")
    db.set("meta-data/tags/instance/aws:autoscaling:groupName", "db-asg")
    every_second = {"loop_interval": 1}
    examples = tmp_path_factory.mktemp("srv")
    drained = examples / "drained"
    try:
        master = factories.salt_master_daemon(
            "imds-master",
            overrides={
                "reactor": reactor_example(examples, drained),
                "file_roots": {"base": [str(examples / "salt")]},
            },
        )
        minions = [
            master.salt_minion_daemon(
                name,
                overrides={
                    "ec2_metadata": {"endpoint": sim.url},
                    "enable_fqdns_grains": False,
                    **extra,
                },
            )
            for name, sim, extra in (
                # Salt counts beacon intervals in loop_intervals (saltfactories sets
                # 0.05 s) but runs beacons once a second: 1 keeps "interval: 1" true.
                ("web-1", web, {"beacons": {"ec2_metadata": [{"interval": 1}]}, **every_second}),
                ("db-1", db, {}),
            )
        ]
        with master.started(), minions[0].started(), minions[1].started():
            yield Fleet(master, minions, master.salt_cli(timeout=60), web, db, drained)
    finally:
        web.stop()
        db.stop()


def targeted(fleet: Fleet, target: str, *options: str) -> List[str]:
    """The minions that answer ``salt <options> <target> test.ping`` (``-G`` by default)."""
    result = fleet.cli.run(*(options or ("-G",)), "test.ping", minion_tgt=target)
    if result.returncode != 0 and not result.data:
        # Salt says "No minions matched the target" or, when the master published
        # anyway, prints {} with "No return received".
        output = result.stdout + result.stderr
        assert "No minions matched" in output or "No return received" in output, result
        return []
    assert result.returncode == 0, result
    data = result.data
    assert isinstance(data, dict), result
    return sorted(name for name, answer in data.items() if answer is True)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("ec2:availability_zone:eu-central-1b", ["web-1"]),
        ("ec2:availability_zone:eu-central-1a", ["db-1"]),
        ("ec2:region:eu-central-1", ["db-1", "web-1"]),
        ("ec2:availability_zone:us-east-1a", []),
        ("ec2:tags:Role:web", ["web-1"]),
        ("ec2:tags:Role:db", ["db-1"]),
        ("ec2_tags_safe:aws_autoscaling_groupName:db-asg", ["db-1"]),
        ("ec2_tags_safe:aws_autoscaling_groupName:*-asg", ["db-1", "web-1"]),
    ],
)
def test_grain_targeting(fleet: Fleet, target: str, expected: List[str]) -> None:
    assert targeted(fleet, target) == expected


def test_colon_tag_with_another_delimiter(fleet: Fleet) -> None:
    target = "ec2|tags|aws:autoscaling:groupName|web-asg"
    assert targeted(fleet, target, "-G", "--delimiter=|") == ["web-1"]


def test_colon_tag_in_a_compound_target(fleet: Fleet) -> None:
    target = "G|@ec2|tags|aws:autoscaling:groupName|db-asg or G@ec2:tags:Role:nothing"
    assert targeted(fleet, target, "-C") == ["db-1"]


def test_refresh_picks_up_a_changed_tag(fleet: Fleet) -> None:
    fleet.db.set("meta-data/tags/instance/Role", "db-primary")
    refreshed = fleet.cli.run("saltutil.refresh_grains", minion_tgt="db-1")
    assert refreshed.returncode == 0 and refreshed.data is True, refreshed
    assert targeted(fleet, "ec2:tags:Role:db-primary") == ["db-1"]
    assert targeted(fleet, "ec2:tags:Role:web") == ["web-1"]


def test_the_master_never_saw_secrets(fleet: Fleet) -> None:
    result = fleet.cli.run("grains.items", minion_tgt="*")
    assert result.returncode == 0, result
    text = result.stdout
    assert "web-asg" in text and "db-asg" in text
    for secret in ("ASIASIMULATORKEY0001", "simulator-secret", "simulator-user-data-secret"):
        assert secret not in text
    cache = Path(fleet.master.config["cachedir"])
    for path in cache.rglob("*"):
        if path.is_file():
            assert b"ASIASIMULATORKEY0001" not in path.read_bytes(), path


def test_minion_logs_hold_nothing_loud_from_the_grain(fleet: Fleet) -> None:
    for minion in fleet.minions:
        text = Path(minion.config["log_file"]).read_text(encoding="utf-8")
        ours = [line for line in text.splitlines() if "saltext.imds_ec2" in line]
        assert not [line for line in ours if "DEBUG" not in line], ours
        assert "ASIASIMULATORKEY0001" not in text


def spot_reads(sim: Simulator) -> int:
    return sum(n for path, n in sim.stats.by_path.items() if path.endswith(SPOT_PATH))


def test_the_beacon_puts_a_spot_notice_on_the_masters_bus_once(
    fleet: Fleet, event_listener: Any
) -> None:
    notice = {"action": "terminate", "time": "2026-11-28T08:22:00Z"}
    since = time.time()
    fleet.web.set(SPOT_PATH, {"$json": notice})
    try:
        matched = event_listener.wait_for_events(
            [(fleet.master.id, SPOT_TAG)], after_time=since, timeout=90
        )
        assert matched.found_all_events, "no {} on the master's bus".format(SPOT_TAG)
        (event,) = matched.matches
        assert event.data["id"] == "web-1"
        assert event.data["kind"] == "spot/interruption"
        assert event.data["notice"] == notice
        assert event.data["time"] == "2026-11-28T08:22:00Z"
        assert event.data["instance_id"] == "i-0123456789abcdef0"
        # The README's example event is this one (Salt's own _stamp aside).
        example = readme_block(README, "salt/beacon/web-1/ec2_metadata/spot/interruption\t{")
        tag, shown = example.split("\t", 1)
        assert tag == SPOT_TAG
        assert {k: v for k, v in json.loads(shown).items() if k != "_stamp"} == event.data
        # The beacon keeps polling (the simulator counts its reads); the notice
        # stays posted, and no second event comes.
        polls_then = spot_reads(fleet.web)
        deadline = time.monotonic() + 120
        while spot_reads(fleet.web) < polls_then + 20 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert spot_reads(fleet.web) >= polls_then + 20, "the beacon stopped polling"
        events = event_listener.get_events([(fleet.master.id, SPOT_TAG)], after_time=since)
        assert len(events) == 1, events
        # db-1 has no beacon configured: nothing from it.
        assert not event_listener.get_events(
            [(fleet.master.id, "salt/beacon/db-1/*")], after_time=since
        )
        # The README's reactor ran the drain state on web-1.
        deadline = time.monotonic() + 120
        while not fleet.drained.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert fleet.drained.read_text().strip() == "terminate at 2026-11-28T08:22:00Z"
    finally:
        fleet.web.delete(SPOT_PATH)


def test_each_kind_of_notice_reaches_the_masters_bus(fleet: Fleet, event_listener: Any) -> None:
    web = fleet.web
    scheduled: Dict[str, str] = {}
    steps: List[Tuple[Callable[[], object], str, Callable[[Dict[str, Any]], bool]]] = [
        (
            web.recommend_rebalance,
            "rebalance/recommendation",
            lambda data: data["time"] != "2026-11-26T09:12:31Z",  # not the pending one
        ),
        (
            lambda: scheduled.update(web.schedule_maintenance("instance-stop", 3600)),
            "maintenance/scheduled",
            lambda data: data["notice"]["EventId"] == scheduled["EventId"],
        ),
        (
            lambda: web.complete_maintenance(scheduled["EventId"]),
            "maintenance/completed",
            lambda data: data["notice"]["EventId"] == scheduled["EventId"],
        ),
        (
            lambda: web.set_lifecycle_state("Terminated"),
            "autoscaling/lifecycle",
            lambda data: data["notice"] == {"previous": "InService", "current": "Terminated"},
        ),
        (
            lambda: web.set_tag("Team", "payments"),
            "tags/changed",
            lambda data: data["notice"]["added"] == {"Team": "payments"},
        ),
    ]
    try:
        for act, kind, expected in steps:
            since = time.time()
            act()
            tag = "salt/beacon/web-1/ec2_metadata/" + kind
            matched = event_listener.wait_for_events(
                [(fleet.master.id, tag)], after_time=since, timeout=90
            )
            assert matched.found_all_events, "no {} on the master's bus".format(tag)
            (event,) = matched.matches
            assert event.data["kind"] == kind
            assert expected(event.data), event.data
    finally:
        web.set_lifecycle_state("InService")
        web.delete_tag("Team")
