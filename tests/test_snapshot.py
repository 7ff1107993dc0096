"""The snapshot: the whole simulated instance as one JSON-safe dict, over real HTTP."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any, Dict, Iterator

import pytest

from ec2_metadata_core import EC2Metadata, IMDSHTTPError
from ec2_metadata_core.flat import flatten
from ec2_metadata_core.lazy import declared
from ec2_metadata_core.sensitive import SECRET_KEYS
from ec2_metadata_core.simulator import Simulator, load_instance
from ec2_metadata_core.snapshot import snapshot, snapshot_keys

INSTANCE = load_instance()
META = INSTANCE["meta-data"]
SECRETS = ("ASIASIMULATORKEY0001", "simulator-secret", "simulator-session-token")


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def metadata(sim: Simulator) -> EC2Metadata:
    return EC2Metadata(endpoint=sim.url, attempts=1)


def served(path: str) -> Any:
    """The instance file's value at ``path`` (under /latest/), or None."""
    node: Any = INSTANCE
    for part in path.strip("/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def test_every_leaf_the_simulator_serves_is_in_the_snapshot(sim: Simulator) -> None:
    snap = snapshot(metadata(sim))
    for name, declaration in declared(EC2Metadata).items():
        if declaration.listings or declaration.sources:
            continue  # not one path: listings and derived values
        item = declaration.reads[0]
        if name in SECRET_KEYS or name == "user_data" or name == "block_device_mapping_names":
            continue
        if served(item) is None:
            assert snap[name] in (None, []), name
        else:
            assert snap[name] not in (None, []), name


def test_values_read_like_the_instance(sim: Simulator) -> None:
    snap = snapshot(metadata(sim))
    assert snap["region"] == "eu-central-1"
    assert snap["availability_zone"] == META["placement"]["availability-zone"]
    assert snap["instance_type"] == META["instance-type"]
    assert snap["ami_launch_index"] == int(META["ami-launch-index"])
    assert snap["kernel_id"] is None  # absent on this instance: null, not "None"
    assert snap["tags"] == {key: value for key, value in META["tags"]["instance"].items()}
    assert snap["tags"]["aws:autoscaling:groupName"]
    assert snap["instance_profile_name"] != snap["iam_role_names"][0]
    macs = META["network"]["interfaces"]["macs"]
    assert sorted(snap["network_interfaces"]) == sorted(macs)
    for mac, nic in snap["network_interfaces"].items():
        assert nic["mac"] == mac
        assert nic["subnet_id"] == macs[mac]["subnet-id"]
        assert nic["device_number"] == int(macs[mac]["device-number"])
    primary = snap["network_interfaces"][snap["mac"]]
    assert primary["ipv4_associations"] == {
        ip: [private] if isinstance(private, str) else private
        for ip, private in macs[snap["mac"]]["ipv4-associations"].items()
    }
    assert set(snap["public_keys"]) == {entry.split("=", 1)[1] for entry in META["public-keys"]}
    assert set(snap["block_device_mapping"]) == set(META["block-device-mapping"])
    assert snap["events_maintenance_scheduled"][0]["Code"] == "system-reboot"


def test_json_types_only_and_stable(sim: Simulator) -> None:
    snap = snapshot(metadata(sim))
    text = json.dumps(snap, sort_keys=True)
    assert json.loads(text) == snap
    assert '"None"' not in text
    assert text == json.dumps(snapshot(metadata(sim)), sort_keys=True)
    assert list(snap) == sorted(snap)


def test_one_token_each_path_once_no_misses(sim: Simulator) -> None:
    stats: Dict[str, Any] = {}
    snapshot(metadata(sim), stats=stats)
    counts = sim.stats
    assert stats["misses"] == []
    assert counts.token_requests == 1
    repeated = {path: n for path, n in counts.by_path.items() if n > 1}
    assert repeated == {}


def test_secrets_only_when_asked(sim: Simulator) -> None:
    plain = json.dumps(snapshot(metadata(sim)))
    assert not [s for s in SECRETS if s in plain]
    assert "simulator-user-data-secret" not in plain
    assert not any("security-credentials/" in p and not p.endswith("/") for p in sim.stats.by_path)
    full = snapshot(metadata(sim), include_secrets=True)
    assert full["iam_security_credentials"]["AccessKeyId"] == "ASIASIMULATORKEY0001"
    assert full["identity_credentials_ec2"] is not None
    assert "user_data" not in full


def test_user_data_text_gzip_and_binary(sim: Simulator) -> None:
    snap = snapshot(metadata(sim), include_user_data=True)
    assert snap["user_data"]["encoding"] == "text"
    assert "simulator-user-data-secret" in snap["user_data"]["content"]

    sim.set(
        "user-data", {"$base64": base64.b64encode(gzip.compress(b"#!/bin/sh\necho hi\n")).decode()}
    )
    snap = snapshot(metadata(sim), include_user_data=True)
    assert snap["user_data"] == {
        "encoding": "text",
        "compression": "gzip",
        "content": "#!/bin/sh\necho hi\n",
    }

    raw = bytes(range(256))
    sim.set("user-data", {"$base64": base64.b64encode(raw).decode()})
    snap = snapshot(metadata(sim), include_user_data=True)
    assert snap["user_data"]["encoding"] == "base64"
    assert base64.b64decode(snap["user_data"]["content"]) == raw

    sim.delete("user-data")
    assert snapshot(metadata(sim), include_user_data=True)["user_data"] is None


def test_tags_off_is_null_not_empty(sim: Simulator) -> None:
    sim.tags_enabled = False
    assert snapshot(metadata(sim))["tags"] is None


def test_spot_notice_and_volatile_values(sim: Simulator) -> None:
    assert snapshot(metadata(sim))["spot_instance_action"] is None
    sim.set(
        "meta-data/spot/instance-action",
        {"$json": {"action": "terminate", "time": "2026-11-26T12:00:00Z"}},
    )
    snap = snapshot(metadata(sim))
    assert snap["spot_instance_action"] == {"action": "terminate", "time": "2026-11-26T12:00:00Z"}


def test_categories_the_model_does_not_know_still_appear(sim: Simulator) -> None:
    sim.set("meta-data/metrics/vhostmd", "<?xml version='1.0'?>")
    sim.set("meta-data/elastic-gpus", "none")
    snap = snapshot(metadata(sim))
    assert snap["metrics"] == {"vhostmd": "<?xml version='1.0'?>"}
    assert snap["elastic_gpus"] == "none"


def test_a_failed_path_is_an_error_not_an_absence(sim: Simulator) -> None:
    sim.add_fault(path="/latest/meta-data/public-ipv4", status=500)
    with pytest.raises(IMDSHTTPError, match="500"):
        snapshot(metadata(sim))


def test_keys_limit_the_gather(sim: Simulator) -> None:
    snap = snapshot(metadata(sim), keys=["region", "tags"])
    assert set(snap) == {"region", "tags"}
    assert not any("network" in path for path in sim.stats.by_path)
    with pytest.raises(KeyError):
        snapshot(metadata(sim), keys=["no_such_key"])


def test_snapshot_keys_match_a_full_snapshot(sim: Simulator) -> None:
    assert list(snapshot(metadata(sim))) == snapshot_keys()


def test_the_primary_interface_has_a_name_that_needs_no_mac(sim: Simulator) -> None:
    snap = snapshot(metadata(sim))
    assert snap["primary_network_interface"] == snap["network_interfaces"][snap["mac"]]
    assert snap["primary_network_interface"]["device_number"] == 0
    flat = flatten(snap)
    mac_key = snap["mac"].replace(":", "_")
    for name in ("subnet_id", "private_ipv4s", "vpc_id", "interface_id"):
        assert (
            flat["primary_network_interface_" + name]
            == flat["network_interfaces_{}_{}".format(mac_key, name)]
        )


def test_the_primary_interface_alone_is_one_pass_no_misses(sim: Simulator) -> None:
    stats: Dict[str, Any] = {}
    snap = snapshot(metadata(sim), keys=["primary_network_interface"], stats=stats)
    assert snap["primary_network_interface"]["subnet_id"].startswith("subnet-")
    assert stats["misses"] == []
    assert sim.stats.token_requests == 1
