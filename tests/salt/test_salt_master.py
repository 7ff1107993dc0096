"""A real salt-master with two minions on 127.0.0.1, each on its own simulated instance.

``salt -G`` on the availability zone and on tags must reach exactly the right
minions, also for tag keys that contain ``:``, and a grains refresh must pick
up a tag that changed while the minion runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple

import pytest

from ec2_metadata_core.simulator import Simulator

pytestmark = pytest.mark.slow


class Fleet(NamedTuple):
    master: Any
    minions: List[Any]
    cli: Any
    web: Simulator
    db: Simulator


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
    try:
        master = factories.salt_master_daemon("imds-master")
        minions = [
            master.salt_minion_daemon(
                name,
                overrides={"ec2_metadata": {"endpoint": sim.url}, "enable_fqdns_grains": False},
            )
            for name, sim in (("web-1", web), ("db-1", db))
        ]
        with master.started(), minions[0].started(), minions[1].started():
            yield Fleet(master, minions, master.salt_cli(timeout=60), web, db)
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
