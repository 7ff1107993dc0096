"""The ``ec2_metadata`` beacon, run by Salt's own beacon loop (``salt.beacons.Beacon``).

The beacon is loaded through the package's ``salt.loader`` entry point, as a
minion loads it; the events are what the minion sends to the master (tag and
data). A real master and minion are in test_salt_master.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import salt.beacons
import salt.config
import yaml
from readme_support import readme_block

from ec2_metadata_core.simulator import Fault, Simulator
from saltext.imds_ec2 import beacon as beacon_impl

README = Path(__file__).resolve().parents[2] / "salt_grains" / "README.md"
MINION_ID = "web-1"
PREFIX = "salt/beacon/{}/ec2_metadata/".format(MINION_ID)
SPOT_PATH = "meta-data/spot/instance-action"
SPOT = {"action": "terminate", "time": "2026-11-28T08:22:00Z"}
# What the simulator's default instance has pending when the beacon starts.
PENDING = ["autoscaling/lifecycle", "maintenance/scheduled", "rebalance/recommendation"]


@pytest.fixture(autouse=True)
def _fresh_watchers() -> Iterator[None]:
    beacon_impl.forget_watchers()
    yield
    beacon_impl.forget_watchers()


def minion_opts(tmp_path: Path, beacon_config: List[Dict[str, Any]], **ec2: Any) -> Dict[str, Any]:
    opts: Dict[str, Any] = salt.config.minion_config(None)
    opts.update(
        id=MINION_ID,
        cachedir=str(tmp_path / "cache"),
        ec2_metadata=ec2 or None,
        beacons={"ec2_metadata": beacon_config},
    )
    return opts


class Loop:
    """Salt's beacon loop for one minion: ``run()`` is one pass (one poll)."""

    def __init__(self, opts: Dict[str, Any]) -> None:
        self.opts = opts
        self.beacons = salt.beacons.Beacon(opts, {})

    def run(self) -> List[Dict[str, Any]]:
        fired = self.beacons.process(self.opts["beacons"], {})
        assert isinstance(fired, list)
        return fired

    def validate(self, config: Any) -> Any:
        return self.beacons.beacons["ec2_metadata.validate"](config)


def tags(fired: List[Dict[str, Any]]) -> List[str]:
    return sorted(event["tag"] for event in fired)


def test_a_spot_notice_fires_once_under_its_tag(tmp_path: Path, imds_simulator: Simulator) -> None:
    loop = Loop(minion_opts(tmp_path, [], endpoint=imds_simulator.url))
    assert tags(loop.run()) == [PREFIX + kind for kind in PENDING]
    assert loop.run() == []
    imds_simulator.set(SPOT_PATH, {"$json": SPOT})
    (fired,) = loop.run()
    assert fired["tag"] == PREFIX + "spot/interruption"
    assert fired["beacon_name"] == "ec2_metadata"
    assert fired["data"] == {
        "kind": "spot/interruption",
        "notice": SPOT,
        "time": "2026-11-28T08:22:00Z",
        "instance_id": "i-0123456789abcdef0",
        "region": "eu-central-1",
        "availability_zone": "eu-central-1b",
        "path": SPOT_PATH,
        "id": MINION_ID,
    }
    later = [loop.run() for _ in range(20)]
    assert later == [[]] * 20
    assert imds_simulator.stats.token_requests == 1


def test_a_beacon_refresh_reports_nothing_twice(tmp_path: Path, imds_simulator: Simulator) -> None:
    opts = minion_opts(tmp_path, [], endpoint=imds_simulator.url)
    assert len(Loop(opts).run()) == len(PENDING)
    # A pillar refresh or beacons.add rebuilds the loader: the watcher lives on.
    imds_simulator.set_tag("Team", "payments")
    (fired,) = Loop(opts).run()
    assert fired["tag"] == PREFIX + "tags/changed"
    assert fired["data"]["notice"]["added"] == {"Team": "payments"}


def test_kinds_limit_what_is_read_and_fired(tmp_path: Path, imds_simulator: Simulator) -> None:
    loop = Loop(minion_opts(tmp_path, [{"kinds": ["spot"]}], endpoint=imds_simulator.url))
    assert loop.run() == []
    imds_simulator.set(SPOT_PATH, {"$json": SPOT})
    assert tags(loop.run()) == [PREFIX + "spot/interruption"]
    read = set(imds_simulator.stats.by_path)
    assert not any("rebalance" in path or "maintenance" in path for path in read), read


def test_notices_posted_during_an_outage_arrive_after_it_with_one_warning(
    tmp_path: Path, imds_simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    loop = Loop(minion_opts(tmp_path, [], endpoint=imds_simulator.url, attempts=1))
    assert len(loop.run()) == len(PENDING)
    fault = imds_simulator.add_fault(Fault(path="/latest/meta-data/*", status=503, times=None))
    imds_simulator.set(SPOT_PATH, {"$json": SPOT})
    with caplog.at_level(logging.WARNING):
        during = [loop.run() for _ in range(3)]
    assert during == [[]] * 3
    fault.times = 0  # IMDS answers again
    assert tags(loop.run()) == [PREFIX + "spot/interruption"]
    assert loop.run() == []
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "IMDS poll failed" in warnings[0].getMessage()


def test_off_ec2_the_beacon_is_silent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # No endpoint set: the AWS variable (tests/conftest.py) names a closed port.
    loop = Loop(minion_opts(tmp_path, []))
    with caplog.at_level(logging.DEBUG):
        assert [loop.run() for _ in range(3)] == [[]] * 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # The grain's probe result is remembered: later minion processes skip the probe.
    assert list((tmp_path / "cache").rglob("*")), "nothing remembered in the cachedir"


def test_disabled_in_the_minion_config(tmp_path: Path, imds_simulator: Simulator) -> None:
    loop = Loop(minion_opts(tmp_path, [], endpoint=imds_simulator.url, enabled=False))
    assert loop.run() == []
    assert imds_simulator.stats.requests == 0


@pytest.mark.parametrize(
    ("config", "ec2", "message"),
    [
        ({"interval": 5}, {}, "must be a list of one-key mappings"),
        ([{"kinds": ["spot", "sunspots"]}], {}, "unknown event kind 'sunspots'"),
        ([{"interval": 5}, {"intervall": 5}], {}, "intervall is not an option of the"),
        ([{"interval": "soon"}], {}, "interval"),
        ([{"interval": 5}], {"timeout": "long"}, "timeout"),
        ([{"interval": 5}], {"colour": "red"}, "ec2_metadata.colour is not an option"),
    ],
)
def test_validate_names_what_is_wrong(
    tmp_path: Path, config: Any, ec2: Dict[str, Any], message: str
) -> None:
    loop = Loop(minion_opts(tmp_path, [], **ec2))
    valid, comment = loop.validate(config)
    assert valid is False
    assert message in comment


def test_validate_accepts_salts_own_options(tmp_path: Path) -> None:
    loop = Loop(minion_opts(tmp_path, []))
    config = [{"interval": 5}, {"kinds": "spot,maintenance"}, {"disable_during_state_run": True}]
    assert loop.validate(config) == (True, "valid ec2_metadata beacon configuration")


def test_an_expired_token_mid_watch_loses_nothing(
    tmp_path: Path, imds_simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    loop = Loop(minion_opts(tmp_path, [{"kinds": ["spot"]}], endpoint=imds_simulator.url))
    assert loop.run() == []
    imds_simulator.expire_tokens()  # as a token past its TTL: the next read gets 401
    imds_simulator.set(SPOT_PATH, {"$json": SPOT})
    with caplog.at_level(logging.WARNING):
        assert tags(loop.run()) == [PREFIX + "spot/interruption"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert imds_simulator.stats.token_requests == 2


def test_the_readmes_beacon_config_is_valid(tmp_path: Path) -> None:
    text = readme_block(README, "# /etc/salt/minion.d/beacons.conf (or the minion's pillar)")
    config = yaml.safe_load(text)["beacons"]["ec2_metadata"]
    loop = Loop(minion_opts(tmp_path, config))
    assert loop.validate(config) == (True, "valid ec2_metadata beacon configuration")
