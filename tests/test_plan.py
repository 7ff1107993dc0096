"""The gather plan is read off the model's declarations, and follows bodies, not the model."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

import pytest

from ec2_metadata_core import EC2Metadata
from ec2_metadata_core.client import IMDSClient
from ec2_metadata_core.lazy import declared
from ec2_metadata_core.model import NOT_METADATA, NetworkInterface
from ec2_metadata_core.plan import Plan
from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.snapshot import snapshot, snapshot_keys

MACS = "meta-data/network/interfaces/macs/"


def undeclared(cls: type) -> List[str]:
    """Public attributes of ``cls`` neither declared metadata nor in NOT_METADATA, or both."""
    table = declared(cls)
    return [
        name
        for name in dir(cls)
        if not name.startswith("_") and (name in table) == (name in NOT_METADATA)
    ]


def test_every_public_attribute_is_declared_metadata_or_not_metadata() -> None:
    assert undeclared(EC2Metadata) == []


def test_a_new_property_neither_declared_nor_listed_as_not_metadata_is_caught() -> None:
    class Grown(EC2Metadata):
        @property
        def shiny_new_value(self) -> str:
            return "x"

    assert undeclared(Grown) == ["shiny_new_value"]


def test_snapshot_keys_are_the_declared_metadata() -> None:
    table = declared(EC2Metadata)
    keys = snapshot_keys(include_secrets=True, include_user_data=True)
    assert keys == sorted(name for name, d in table.items() if d.in_snapshot)
    # Metadata another key holds whole is no key of its own.
    assert "block_device_mapping_names" in table and "block_device_mapping_names" not in keys
    assert not NOT_METADATA & set(keys)


def test_listings_go_first_the_interfaces_first() -> None:
    keys = snapshot_keys()
    first = Plan(keys, discover=True).first
    assert first[0] == MACS
    listings = {"meta-data/"} | {
        listing.item for key in keys for listing in declared(EC2Metadata)[key].listings
    }
    assert set(first[: len(listings)]) == listings
    assert len(first) == len(set(first))


def test_derived_values_read_their_sources() -> None:
    assert Plan(["region"]).first == ["dynamic/instance-identity/document"]
    assert Plan(["instance_profile_name"]).first == ["meta-data/iam/info"]
    assert Plan(["primary_network_interface"]).first == [MACS, "meta-data/mac"]


def test_follow_is_a_function_of_the_body_alone() -> None:
    plan = Plan(["network_interfaces", "tags", "public_keys", "block_device_mapping"])
    mac = "0e:49:61:0f:c3:11"
    children = plan.follow(MACS, mac.encode() + b"/\n")
    # Every declared value of the interface, the listing its associations wait on first.
    assert children[0] == MACS + mac + "/public-ipv4s"
    items = [path[len(MACS + mac + "/") :] for path in children]
    assert len(items) == len(set(items))
    assert set(items) == {d.reads[0] for d in declared(NetworkInterface).values()}
    assert plan.follow(MACS + mac + "/public-ipv4s", b"3.1.2.3\n3.1.2.4") == [
        MACS + mac + "/ipv4-associations/3.1.2.3",
        MACS + mac + "/ipv4-associations/3.1.2.4",
    ]
    assert plan.follow("meta-data/tags/instance/", b"Name\nteam:owner") == [
        "meta-data/tags/instance/Name",
        "meta-data/tags/instance/team:owner",
    ]
    assert plan.follow("meta-data/public-keys/", b"0=my-key\n1=other") == [
        "meta-data/public-keys/0/openssh-key",
        "meta-data/public-keys/1/openssh-key",
    ]
    assert plan.follow("meta-data/block-device-mapping/", b"ami\nroot") == [
        "meta-data/block-device-mapping/ami",
        "meta-data/block-device-mapping/root",
    ]
    # The same body, again: the same answer (no state carried between calls).
    assert plan.follow(MACS, mac.encode() + b"/\n") == children


def test_follow_names_nothing_for_404_malformed_or_unwanted_listings() -> None:
    plan = Plan(["tags", "public_keys"])
    assert plan.follow("meta-data/tags/instance/", None) == []  # tags off
    assert plan.follow("meta-data/public-keys/", b"not-an-index-line") == []
    assert plan.follow(MACS, b"0e:49:61:0f:c3:11/") == []  # not asked for
    assert plan.follow("meta-data/ami-id", b"ami-1") == []


def test_only_the_first_role_credentials_are_read() -> None:
    plan = Plan(["iam_security_credentials"])
    assert plan.first == ["meta-data/iam/security-credentials/"]
    assert plan.follow("meta-data/iam/security-credentials/", b"web-role\nother-role") == [
        "meta-data/iam/security-credentials/web-role"
    ]


def test_discovery_reads_unknown_categories_whole() -> None:
    plan = Plan(snapshot_keys(), discover=True)
    assert plan.follow("meta-data/", b"ami-id\nmetrics/\nelastic-gpus\nplacement/") == [
        "meta-data/metrics/",
        "meta-data/elastic-gpus",
    ]
    assert plan.follow("meta-data/metrics/", b"vhostmd\nmore/") == [
        "meta-data/metrics/vhostmd",
        "meta-data/metrics/more/",
    ]
    assert plan.follow("meta-data/placement/", b"availability-zone") == []  # known
    assert Plan(snapshot_keys()).follow("meta-data/", b"metrics/") == []  # not discovering


def test_every_key_alone_is_one_pass_with_no_misses(imds_simulator: Simulator) -> None:
    """Each key's declaration names every path its value reads."""
    keys = snapshot_keys(include_secrets=True, include_user_data=True)
    missed: Dict[str, Any] = {}
    for key in keys:
        stats: Dict[str, Any] = {}
        metadata = EC2Metadata(endpoint=imds_simulator.url)
        snap = snapshot(
            metadata, keys=[key], include_secrets=True, include_user_data=True, stats=stats
        )
        assert list(snap) == [key]
        if stats["misses"]:
            missed[key] = stats["misses"]
    assert missed == {}


@pytest.mark.parametrize("key", ["network_interfaces", "tags", "public_keys"])
def test_a_listing_and_its_entries_are_read_once_each(imds_simulator: Simulator, key: str) -> None:
    snapshot(EC2Metadata(endpoint=imds_simulator.url), keys=[key])
    repeated = {path: n for path, n in imds_simulator.stats.by_path.items() if n > 1}
    assert repeated == {}
    assert imds_simulator.stats.token_requests == 1


def test_the_gather_reads_no_model_value_while_bodies_arrive(
    imds_simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transport's callbacks run only the plan; the model is read after the one fetch."""
    fetching: List[bool] = []
    during: List[str] = []
    after: List[str] = []
    real_fetch, real_read = IMDSClient.fetch, EC2Metadata._read

    def fetch(client: IMDSClient, paths: Iterable[str], follow: Any = None) -> Any:
        fetching.append(True)
        try:
            return real_fetch(client, paths, follow)
        finally:
            fetching.pop()

    def read(metadata: EC2Metadata, item: str) -> Optional[bytes]:
        (during if fetching else after).append(item)
        return real_read(metadata, item)

    monkeypatch.setattr(IMDSClient, "fetch", fetch)
    monkeypatch.setattr(EC2Metadata, "_read", read)
    snapshot(EC2Metadata(endpoint=imds_simulator.url), include_secrets=True)
    assert during == []
    assert MACS in after and "meta-data/tags/instance/" in after
