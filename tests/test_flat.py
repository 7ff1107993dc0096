"""The flattened export: identifiers only, nothing lost, the same input gives the same output."""

from __future__ import annotations

import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ec2_metadata_core.flat import IDENTIFIER, flatten, flatten_with_paths, to_env

# What EC2 allows in a tag key (docs/imds.md: letters, digits and + - = . , _ : @).
TAG_KEY = st.text(
    alphabet=st.sampled_from(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-=.,_:@"
    ),
    min_size=1,
    max_size=20,
)
TAG_VALUE = st.text(max_size=30)


def test_nested_keys_join_with_underscores() -> None:
    snap = {
        "region": "eu-central-1",
        "tags": {"Name": "web-1", "aws:autoscaling:groupName": "web-asg"},
        "network_interfaces": {"0a:1b:2c:3d:4e:5f": {"subnet_id": "subnet-1", "ipv6s": ["::1"]}},
    }
    assert flatten(snap) == {
        "network_interfaces_0a_1b_2c_3d_4e_5f_ipv6s": ["::1"],
        "network_interfaces_0a_1b_2c_3d_4e_5f_subnet_id": "subnet-1",
        "region": "eu-central-1",
        "tags_Name": "web-1",
        "tags_aws_autoscaling_groupName": "web-asg",
    }


def test_colliding_tag_keys_both_survive() -> None:
    flat = flatten_with_paths({"tags": {"env-tier": "a", "env_tier": "b", "env.tier": "c"}})
    # The key that needed no sanitising keeps the plain name.
    assert flat["tags_env_tier"] == (("tags", "env_tier"), "b")
    others = {path: value for key, (path, value) in flat.items() if key != "tags_env_tier"}
    assert others == {("tags", "env-tier"): "a", ("tags", "env.tier"): "c"}
    assert all(re.fullmatch(r"tags_env_tier_[0-9a-f]{8}", k) for k in flat if k != "tags_env_tier")


def test_a_tag_named_like_a_suffixed_key_costs_nothing() -> None:
    first = flatten_with_paths({"tags": {"env-tier": "a", "env_tier": "b"}})
    (suffixed,) = [key for key in first if key != "tags_env_tier"]
    crafted = {"env-tier": "a", "env_tier": "b", suffixed[len("tags_") :]: "c"}
    flat = flatten_with_paths({"tags": crafted})
    assert sorted(value for _, value in flat.values()) == ["a", "b", "c"]
    assert flat[suffixed] == (("tags", suffixed[len("tags_") :]), "c")
    assert all(IDENTIFIER.match(key) for key in flat)


def test_lists_of_mappings_are_numbered_and_nulls_kept() -> None:
    snap = {
        "events_maintenance_scheduled": [{"Code": "system-reboot"}, {"Code": "instance-stop"}],
        "public_ipv4": None,
        "security_groups": ["a", "b"],
    }
    assert flatten(snap, root="ec2") == {
        "ec2_events_maintenance_scheduled_0_Code": "system-reboot",
        "ec2_events_maintenance_scheduled_1_Code": "instance-stop",
        "ec2_public_ipv4": None,
        "ec2_security_groups": ["a", "b"],
    }


def test_leading_digit_gets_an_underscore() -> None:
    assert list(flatten({"9lives": 1})) == ["_9lives"]


@settings(max_examples=300, deadline=None)
@given(tags=st.dictionaries(TAG_KEY, TAG_VALUE, max_size=12))
def test_no_tag_lost_every_key_an_identifier_deterministic(tags: dict[str, str]) -> None:
    snap = {"region": "eu-west-1", "tags": tags}
    flat = flatten_with_paths(snap)
    assert all(IDENTIFIER.match(key) for key in flat)
    tag_entries = {path[1]: value for path, value in flat.values() if path[0] == "tags"}
    assert tag_entries == tags
    assert flatten_with_paths(dict(reversed(list(snap.items())))) == flat
    assert (
        flatten_with_paths({"tags": dict(reversed(list(tags.items()))), "region": "eu-west-1"})
        == flat
    )


@settings(max_examples=100, deadline=None)
@given(
    tags=st.dictionaries(
        TAG_KEY,
        st.text(st.characters(exclude_characters="\0", exclude_categories=("Cs",))),
        max_size=6,
    )
)
def test_env_lines_are_shell_safe(tags: dict[str, str]) -> None:
    flat = flatten({"tags": tags, "security_groups": ["a b", "c'd"], "public_ipv4": None})
    script = (
        to_env(flat, prefix="ec2_")
        + '\nprintf "%s\\0" '
        + " ".join('"$ec2_{}"'.format(key) for key in flat)
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    expected = []
    for value in flat.values():
        if value is None:
            expected.append("")
        elif isinstance(value, list):
            expected.append("\n".join(value))
        else:
            expected.append(value)
    assert out.decode("utf-8").split("\0")[:-1] == expected


def test_to_env_refuses_a_prefix_that_makes_no_shell_names() -> None:
    from ec2_metadata_core.errors import ConfigError

    assert to_env({"region": "eu-west-1"}, "ec2_") == "export ec2_region=eu-west-1"
    for prefix in ("my-", "9", "a b"):
        with pytest.raises(ConfigError, match="would not make identifiers"):
            to_env({"region": "eu-west-1"}, prefix)
