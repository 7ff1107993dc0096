"""EC2Metadata against the simulator: every seed attribute, its type, value and caching rule.

Expected values come from the simulator's own instance data (its loader), so
the tests follow the data file; a few literals are the spot checks a user makes.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from ec2_metadata_core import (
    EC2Metadata,
    IMDSError,
    InstanceTags,
    MalformedResponseError,
    NetworkInterface,
    PathNotFoundError,
    PublicKey,
    SpotInstanceAction,
    TagsNotEnabledError,
    ec2_metadata,
)
from ec2_metadata_core.simulator import Simulator, load_instance

DATA = load_instance()
META = DATA["meta-data"]
DOCUMENT = DATA["dynamic"]["instance-identity"]["document"]["$json"]
IAM_INFO = META["iam"]["info"]["$json"]
(ROLE,) = META["iam"]["security-credentials"]
CREDENTIALS = META["iam"]["security-credentials"][ROLE]["$json"]
MACS = META["network"]["interfaces"]["macs"]
TAGS = META["tags"]["instance"]


def leaf(path: str) -> Any:
    """The data-file value at ``path`` (relative to /latest/)."""
    node: Any = DATA
    for part in path.split("/"):
        node = node[part]
    return node


def text(path: str) -> str:
    value = leaf(path)
    return "\n".join(value) if isinstance(value, list) else value


def lines(path: str) -> List[str]:
    value = leaf(path)
    return list(value) if isinstance(value, list) else value.splitlines()


def gets(sim: Simulator, path: str) -> int:
    return sim.stats.by_path["GET /latest/" + path]


# -- every seed attribute: name, type and the value the simulator serves ------------

# (attribute, expected value, expected type)
SEED_VALUES: List[Tuple[str, Callable[[], Any], type]] = [
    ("account_id", lambda: DOCUMENT["accountId"], str),
    ("ami_id", lambda: text("meta-data/ami-id"), str),
    (
        "autoscaling_target_lifecycle_state",
        lambda: text("meta-data/autoscaling/target-lifecycle-state"),
        str,
    ),
    ("availability_zone", lambda: text("meta-data/placement/availability-zone"), str),
    ("availability_zone_id", lambda: text("meta-data/placement/availability-zone-id"), str),
    ("ami_launch_index", lambda: int(text("meta-data/ami-launch-index")), int),
    ("ami_manifest_path", lambda: text("meta-data/ami-manifest-path"), str),
    ("domain", lambda: text("meta-data/services/domain"), str),
    ("iam_info", lambda: IAM_INFO, dict),
    ("iam_security_credentials", lambda: CREDENTIALS, dict),
    ("instance_action", lambda: text("meta-data/instance-action"), str),
    ("instance_id", lambda: text("meta-data/instance-id"), str),
    ("instance_identity_document", lambda: DOCUMENT, dict),
    ("instance_profile_arn", lambda: IAM_INFO["InstanceProfileArn"], str),
    ("instance_profile_id", lambda: IAM_INFO["InstanceProfileId"], str),
    ("instance_profile_name", lambda: IAM_INFO["InstanceProfileArn"].rsplit("/", 1)[1], str),
    ("instance_type", lambda: text("meta-data/instance-type"), str),
    ("mac", lambda: text("meta-data/mac"), str),
    ("partition", lambda: text("meta-data/services/partition"), str),
    ("private_hostname", lambda: text("meta-data/local-hostname"), str),
    ("private_ipv4", lambda: text("meta-data/local-ipv4"), str),
    ("public_hostname", lambda: text("meta-data/public-hostname"), str),
    ("public_ipv4", lambda: text("meta-data/public-ipv4"), str),
    ("region", lambda: DOCUMENT["region"], str),
    ("reservation_id", lambda: text("meta-data/reservation-id"), str),
    ("security_groups", lambda: lines("meta-data/security-groups"), list),
    ("user_data", lambda: DATA["user-data"].encode("utf-8"), bytes),
    ("instance_life_cycle", lambda: text("meta-data/instance-life-cycle"), str),
]


@pytest.mark.parametrize(
    ("name", "expected", "kind"), SEED_VALUES, ids=[row[0] for row in SEED_VALUES]
)
def test_seed_attribute_serves_the_instance_value(
    imds_simulator: Simulator, name: str, expected: Callable[[], Any], kind: type
) -> None:
    value = getattr(EC2Metadata(), name)
    assert value == expected()
    assert type(value) is kind


def test_spot_checks_a_user_makes(imds_simulator: Simulator) -> None:
    assert ec2_metadata.region == "eu-central-1"
    assert ec2_metadata.availability_zone == "eu-central-1b"
    assert ec2_metadata.instance_id.startswith("i-")
    assert ec2_metadata.tags["Name"] == "web-01"
    assert len(ec2_metadata.network_interfaces) == 2


def test_absent_seed_values_in_the_default_instance(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    assert "kernel-id" not in META
    assert metadata.kernel_id is None
    assert "spot" not in META
    assert metadata.spot_instance_action is None


def test_network_interfaces_map_each_mac(imds_simulator: Simulator) -> None:
    interfaces = EC2Metadata().network_interfaces
    assert list(interfaces) == list(MACS)
    for mac, interface in interfaces.items():
        assert type(interface) is NetworkInterface
        assert interface.mac == mac
        assert repr(interface) == "NetworkInterface({!r})".format(mac)


def interface_expectations(mac: str) -> Dict[str, Any]:
    """Every seed NetworkInterface attribute, as the data file says it should read."""
    data = MACS[mac]

    def opt_text(item: str) -> Optional[str]:
        value = data.get(item)
        return (
            None
            if value is None
            else text("meta-data/network/interfaces/macs/{}/{}".format(mac, item))
        )

    def opt_lines(item: str) -> List[str]:
        if item not in data:
            return []
        return lines("meta-data/network/interfaces/macs/{}/{}".format(mac, item))

    associations = {
        ip: [private] if isinstance(private, str) else private
        for ip, private in data.get("ipv4-associations", {}).items()
    }
    return {
        "device_number": int(data["device-number"]),
        "interface_id": data["interface-id"],
        "ipv4_associations": associations,
        "ipv6s": opt_lines("ipv6s"),
        "mac": data["mac"],
        "owner_id": data["owner-id"],
        "private_hostname": data["local-hostname"],
        "private_ipv4s": opt_lines("local-ipv4s"),
        "public_hostname": opt_text("public-hostname"),
        "public_ipv4s": opt_lines("public-ipv4s"),
        "security_groups": opt_lines("security-groups"),
        "security_group_ids": opt_lines("security-group-ids"),
        "subnet_id": data["subnet-id"],
        "subnet_ipv4_cidr_block": opt_text("subnet-ipv4-cidr-block"),
        "subnet_ipv6_cidr_blocks": opt_lines("subnet-ipv6-cidr-blocks"),
        "vpc_id": data["vpc-id"],
        "vpc_ipv4_cidr_block": opt_text("vpc-ipv4-cidr-block"),
        "vpc_ipv4_cidr_blocks": opt_lines("vpc-ipv4-cidr-blocks"),
        "vpc_ipv6_cidr_blocks": opt_lines("vpc-ipv6-cidr-blocks"),
        "ipv6_prefix": opt_lines("ipv6-prefix"),
    }


@pytest.mark.parametrize("mac", list(MACS))
def test_every_network_interface_attribute(imds_simulator: Simulator, mac: str) -> None:
    interface = EC2Metadata().network_interfaces[mac]
    for name, expected in interface_expectations(mac).items():
        assert getattr(interface, name) == expected, name


def test_primary_interface_spot_checks(imds_simulator: Simulator) -> None:
    primary = ec2_metadata.network_interfaces[ec2_metadata.mac]
    assert primary.device_number == 0
    assert primary.ipv4_associations == {"203.0.113.25": ["10.0.1.23"]}
    assert primary.private_ipv4s == ["10.0.1.23", "10.0.1.24"]
    secondary = next(i for i in ec2_metadata.network_interfaces.values() if i is not primary)
    # absent on the second ENI: None for single values, [] for lists
    assert secondary.public_hostname is None
    assert secondary.public_ipv4s == []
    assert secondary.ipv6s == []
    assert secondary.ipv4_associations == {}
    assert secondary.vpc_ipv6_cidr_blocks == []


def test_public_keys_map_names_to_keys(imds_simulator: Simulator) -> None:
    keys = EC2Metadata().public_keys
    entries = META["public-keys"]
    assert list(keys) == [entry.split("=", 1)[1] for entry in entries]
    for entry, body in entries.items():
        key = keys[entry.split("=", 1)[1]]
        assert type(key) is PublicKey
        assert key.openssh_key == body["openssh-key"]


def test_tags_are_a_lazy_mapping(imds_simulator: Simulator) -> None:
    tags = EC2Metadata().tags
    assert isinstance(tags, InstanceTags)
    assert list(tags) == list(TAGS)
    assert len(tags) == len(TAGS)
    assert all(gets(imds_simulator, "meta-data/tags/instance/" + name) == 0 for name in TAGS)
    assert dict(tags) == TAGS
    assert tags["env-tier"] != tags["env_tier"]
    assert "missing" not in tags
    with pytest.raises(KeyError):
        tags["missing"]


# -- fixes over the seed ------------------------------------------------------------


def test_credentials_come_from_the_listed_role_not_the_profile_name(
    imds_simulator: Simulator,
) -> None:
    metadata = EC2Metadata()
    assert metadata.instance_profile_name != ROLE  # the case the seed got wrong
    credentials = metadata.iam_security_credentials
    assert credentials is not None
    assert credentials["AccessKeyId"] == "ASIASIMULATORKEY0001"
    assert gets(imds_simulator, "meta-data/iam/security-credentials/" + ROLE) == 1
    name = metadata.instance_profile_name
    assert gets(imds_simulator, "meta-data/iam/security-credentials/{}".format(name)) == 0


AWKWARD_TAGS = {
    "aws:cloudformation:stack-name": "web-stack",
    "owner@team": "ops",
    "a=b": "equals",
    "c++": "plus",
    "x,y": "comma",
    "k:v@w=x+y,z": "all",
}


def test_tag_names_travel_literally_in_urls(imds_simulator: Simulator) -> None:
    # The simulator, like the service may, takes paths literally: a key sent
    # percent-encoded would answer 404 and the value would be lost.
    for name, value in AWKWARD_TAGS.items():
        imds_simulator.set("meta-data/tags/instance/" + name, value)
    tags = EC2Metadata().tags
    for name, value in AWKWARD_TAGS.items():
        assert tags[name] == value
    assert imds_simulator.stats.by_path["GET /latest/meta-data/tags/instance/k:v@w=x+y,z"] == 1


def test_names_a_path_cannot_hold_are_percent_encoded(imds_simulator: Simulator) -> None:
    imds_simulator.set("meta-data/tags/instance/caf\u00e9", "odd")
    assert EC2Metadata().tags["caf\u00e9"] == "odd"
    sent = "GET /latest/meta-data/tags/instance/caf%C3%A9"
    assert imds_simulator.stats.by_path[sent] == 1


def test_tags_not_enabled_raises_with_the_fix(imds_simulator: Simulator) -> None:
    imds_simulator.tags_enabled = False
    metadata = EC2Metadata()
    with pytest.raises(TagsNotEnabledError) as caught:
        metadata.tags  # noqa: B018
    assert "--instance-metadata-tags enabled" in str(caught.value)
    assert isinstance(caught.value, IMDSError)
    # not cached: once enabled, the next access works
    imds_simulator.tags_enabled = True
    assert metadata.tags["Role"] == "web"


def test_empty_tag_listing_is_an_empty_mapping(imds_simulator: Simulator) -> None:
    imds_simulator.set("meta-data/tags/instance", {})
    assert dict(EC2Metadata().tags) == {}


# -- caching rules ----------------------------------------------------------------

# (attribute, the path whose GET count proves a fetch, how to change it on the server)
CACHED: List[Tuple[str, str]] = [
    ("ami_id", "meta-data/ami-id"),
    ("availability_zone", "meta-data/placement/availability-zone"),
    ("availability_zone_id", "meta-data/placement/availability-zone-id"),
    ("ami_launch_index", "meta-data/ami-launch-index"),
    ("ami_manifest_path", "meta-data/ami-manifest-path"),
    ("domain", "meta-data/services/domain"),
    ("iam_info", "meta-data/iam/info"),
    ("instance_id", "meta-data/instance-id"),
    ("instance_identity_document", "dynamic/instance-identity/document"),
    ("instance_type", "meta-data/instance-type"),
    ("kernel_id", "meta-data/kernel-id"),
    ("mac", "meta-data/mac"),
    ("network_interfaces", "meta-data/network/interfaces/macs/"),
    ("partition", "meta-data/services/partition"),
    ("private_hostname", "meta-data/local-hostname"),
    ("private_ipv4", "meta-data/local-ipv4"),
    ("public_hostname", "meta-data/public-hostname"),
    ("public_ipv4", "meta-data/public-ipv4"),
    ("reservation_id", "meta-data/reservation-id"),
    ("security_groups", "meta-data/security-groups"),
    ("tags", "meta-data/tags/instance/"),
    ("user_data", "user-data"),
    ("instance_life_cycle", "meta-data/instance-life-cycle"),
    ("public_keys", "meta-data/public-keys/"),
]

UNCACHED: List[Tuple[str, str]] = [
    ("autoscaling_target_lifecycle_state", "meta-data/autoscaling/target-lifecycle-state"),
    ("instance_action", "meta-data/instance-action"),
    ("spot_instance_action", "meta-data/spot/instance-action"),
    ("iam_security_credentials", "meta-data/iam/security-credentials/" + ROLE),
]

# derived from a cached value: no fetch of their own, no cache of their own (as in the seed)
DERIVED: List[Tuple[str, str]] = [
    ("account_id", "dynamic/instance-identity/document"),
    ("instance_profile_arn", "meta-data/iam/info"),
    ("instance_profile_id", "meta-data/iam/info"),
    ("instance_profile_name", "meta-data/iam/info"),
]


@pytest.mark.parametrize(("name", "path"), CACHED, ids=[row[0] for row in CACHED])
def test_cached_attribute_is_fetched_once_until_deleted(
    imds_simulator: Simulator, name: str, path: str
) -> None:
    metadata = EC2Metadata()
    first = getattr(metadata, name)
    assert getattr(metadata, name) is first
    assert gets(imds_simulator, path) == 1
    delattr(metadata, name)
    assert getattr(metadata, name) == first
    assert gets(imds_simulator, path) == 2


@pytest.mark.parametrize(("name", "path"), UNCACHED, ids=[row[0] for row in UNCACHED])
def test_uncached_attribute_is_fetched_on_every_access(
    imds_simulator: Simulator, name: str, path: str
) -> None:
    metadata = EC2Metadata()
    for _ in range(3):
        getattr(metadata, name)
    assert gets(imds_simulator, path) == 3
    assert name not in vars(metadata)


@pytest.mark.parametrize(("name", "path"), DERIVED, ids=[row[0] for row in DERIVED])
def test_derived_attribute_reads_its_cached_source(
    imds_simulator: Simulator, name: str, path: str
) -> None:
    metadata = EC2Metadata()
    for _ in range(3):
        getattr(metadata, name)
    assert gets(imds_simulator, path) == 1


def test_region_caches_what_the_identity_document_says(imds_simulator: Simulator) -> None:
    # As in the seed: region is cached on its own, derived from the cached document.
    metadata = EC2Metadata()
    assert metadata.region == "eu-central-1"
    assert "region" in vars(metadata)
    imds_simulator.set(
        "dynamic/instance-identity/document", {"$json": dict(DOCUMENT, region="eu-west-3")}
    )
    del metadata.region
    assert metadata.region == "eu-central-1"  # the document is still cached
    del metadata.region, metadata.instance_identity_document
    assert metadata.region == "eu-west-3"
    assert gets(imds_simulator, "dynamic/instance-identity/document") == 2


def test_del_refetches_a_value_that_changed(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    assert metadata.instance_type == "m5.large"
    imds_simulator.set("meta-data/instance-type", "c7g.xlarge")
    assert metadata.instance_type == "m5.large"  # cached
    del metadata.instance_type
    assert metadata.instance_type == "c7g.xlarge"


def test_del_of_a_value_never_read_is_an_attribute_error(imds_simulator: Simulator) -> None:
    # as with functools.cached_property, which the seed used
    with pytest.raises(AttributeError):
        del EC2Metadata().instance_type


def test_uncached_values_follow_the_server(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    assert metadata.spot_instance_action is None
    imds_simulator.set(
        "meta-data/spot/instance-action",
        {"$json": {"action": "terminate", "time": "2026-11-26T12:02:00Z"}, "$compact": True},
    )
    action = metadata.spot_instance_action
    assert isinstance(action, SpotInstanceAction)
    assert action.action == "terminate"
    assert action.time == dt.datetime(2026, 11, 26, 12, 2, tzinfo=dt.timezone.utc)

    imds_simulator.set("meta-data/instance-action", "reboot")
    assert metadata.instance_action == "reboot"
    imds_simulator.delete("meta-data/autoscaling/target-lifecycle-state")
    assert metadata.autoscaling_target_lifecycle_state is None

    rotated = dict(CREDENTIALS, AccessKeyId="ASIAROTATED000000001")
    imds_simulator.set("meta-data/iam/security-credentials/" + ROLE, {"$json": rotated})
    credentials = metadata.iam_security_credentials
    assert credentials is not None
    assert credentials["AccessKeyId"] == "ASIAROTATED000000001"


def test_clear_all_clears_every_value_and_the_token(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    names = [name for name, _ in CACHED]
    for name in names:
        getattr(metadata, name)
    assert imds_simulator.stats.token_requests == 1
    imds_simulator.set("meta-data/instance-type", "c7g.xlarge")
    metadata.clear_all()
    assert not any(name in vars(metadata) for name in names)
    assert metadata.instance_type == "c7g.xlarge"
    for name, path in CACHED:
        getattr(metadata, name)
        assert gets(imds_simulator, path) >= 2, name
    assert imds_simulator.stats.token_requests == 2


def test_network_interface_caches_and_clears_like_the_parent(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    interface = metadata.network_interfaces[metadata.mac]
    path = "meta-data/network/interfaces/macs/{}/subnet-id".format(metadata.mac)
    interface.subnet_id  # noqa: B018
    interface.subnet_id  # noqa: B018
    assert gets(imds_simulator, path) == 1
    del interface.subnet_id
    interface.subnet_id  # noqa: B018
    interface.clear_all()
    interface.subnet_id  # noqa: B018
    assert gets(imds_simulator, path) == 3


# -- absent values: None and [] ----------------------------------------------------------


def sparse_instance() -> Dict[str, Any]:
    """A private instance without a public address, role, ASG, spot notice or user data."""
    data = copy.deepcopy(DATA)
    meta = data["meta-data"]
    for key in ("public-hostname", "public-ipv4", "iam", "autoscaling", "public-keys", "ipv6"):
        meta.pop(key)
    meta["placement"].pop("availability-zone-id")
    data.pop("user-data")
    primary = meta["network"]["interfaces"]["macs"][meta["mac"]]
    for key in (
        "ipv4-associations",
        "ipv6s",
        "public-hostname",
        "public-ipv4s",
        "subnet-ipv6-cidr-blocks",
        "vpc-ipv4-cidr-block",
        "vpc-ipv4-cidr-blocks",
        "vpc-ipv6-cidr-blocks",
        "subnet-ipv4-cidr-block",
        "ipv6-prefix",
    ):
        primary.pop(key)
    return data


ABSENT: Dict[str, Any] = {
    "autoscaling_target_lifecycle_state": None,
    "availability_zone_id": None,
    "iam_info": None,
    "iam_security_credentials": None,
    "instance_profile_arn": None,
    "instance_profile_id": None,
    "instance_profile_name": None,
    "kernel_id": None,
    "public_hostname": None,
    "public_ipv4": None,
    "spot_instance_action": None,
    "user_data": None,
    "public_keys": {},
}

ABSENT_ON_INTERFACE: Dict[str, Any] = {
    "ipv4_associations": {},
    "ipv6s": [],
    "public_hostname": None,
    "public_ipv4s": [],
    "subnet_ipv4_cidr_block": None,
    "subnet_ipv6_cidr_blocks": [],
    "vpc_ipv4_cidr_block": None,
    "vpc_ipv4_cidr_blocks": [],
    "vpc_ipv6_cidr_blocks": [],
    "ipv6_prefix": [],
}


def test_absent_values_are_none_or_empty(
    imds_simulator_factory: Callable[..., Simulator],
) -> None:
    sim = imds_simulator_factory(instance=sparse_instance())
    metadata = EC2Metadata(endpoint=sim.url)
    for name, expected in ABSENT.items():
        assert getattr(metadata, name) == expected, name
    interface = metadata.network_interfaces[metadata.mac]
    for name, expected in ABSENT_ON_INTERFACE.items():
        assert getattr(interface, name) == expected, name
    # the values an instance always has are still there
    assert metadata.instance_id == DOCUMENT["instanceId"]


def test_a_missing_always_present_value_is_an_error(imds_simulator: Simulator) -> None:
    imds_simulator.delete("meta-data/instance-type")
    with pytest.raises(PathNotFoundError, match="meta-data/instance-type"):
        EC2Metadata().instance_type  # noqa: B018


@pytest.mark.parametrize(
    ("path", "body", "name"),
    [
        ("meta-data/ami-launch-index", "zero", "ami_launch_index"),
        ("dynamic/instance-identity/document", "{not json", "instance_identity_document"),
        ("meta-data/iam/info", '["a list"]', "iam_info"),
        (
            "meta-data/spot/instance-action",
            '{"action": "explode", "time": "x"}',
            "spot_instance_action",
        ),
        (
            "meta-data/spot/instance-action",
            '{"action": "stop", "time": "soon"}',
            "spot_instance_action",
        ),
    ],
)
def test_malformed_values_raise_instead_of_guessing(
    imds_simulator: Simulator, path: str, body: str, name: str
) -> None:
    imds_simulator.set(path, {"$text": body})
    with pytest.raises(MalformedResponseError) as caught:
        getattr(EC2Metadata(), name)
    assert body not in str(caught.value)


def test_identity_document_is_the_json_imds_serves(imds_simulator: Simulator) -> None:
    document = EC2Metadata().instance_identity_document
    assert document == json.loads(json.dumps(DOCUMENT))
    assert document["region"] == "eu-central-1"


def test_primary_network_interface_is_the_one_of_mac(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    primary = metadata.primary_network_interface
    assert primary is metadata.network_interfaces[metadata.mac]
    assert primary.device_number == 0
