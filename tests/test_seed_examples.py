"""The seed README's examples run as written, with only the package name swapped.

Each snippet below is the seed's text (package ``ec2_metadata``); ``swap``
changes the import and nothing else. The simulator stands in for EC2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Dict

import pytest

from ec2_metadata_core import NetworkInterface, SpotInstanceAction, ec2_metadata
from ec2_metadata_core.simulator import Simulator

QUICK_EXAMPLE = """\
from ec2_metadata import ec2_metadata
print(ec2_metadata.region)
print(ec2_metadata.instance_id)
"""

SINGLETON = """\
from ec2_metadata import ec2_metadata
ec2_metadata.region
"""

SESSION = """\
import requests
from ec2_metadata import EC2Metadata
metadata = EC2Metadata(session=requests.Session())
"""

DEL_ONE = """\
del ec2_metadata.network_interfaces
"""

CLEAR_ALL = """\
ec2_metadata.clear_all()
"""

FRESH_TAGS = """\
del ec2_metadata.tags
ec2_metadata.tags["Name"]  # fresh
"""


def swap(snippet: str) -> str:
    return snippet.replace("from ec2_metadata import", "from ec2_metadata_core import")


def run(snippet: str, namespace: Dict[str, Any]) -> Dict[str, Any]:
    exec(compile(swap(snippet), "<seed README>", "exec"), namespace)
    return namespace


def gets(sim: Simulator, path: str) -> int:
    return sim.stats.by_path["GET /latest/" + path]


def test_quick_example_in_a_fresh_interpreter(imds_simulator: Simulator) -> None:
    env = dict(os.environ, AWS_EC2_METADATA_SERVICE_ENDPOINT=imds_simulator.url)
    done = subprocess.run(
        [sys.executable, "-c", swap(QUICK_EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.splitlines() == ["eu-central-1", "i-0123456789abcdef0"]
    assert done.stderr == ""


def test_singleton_example(imds_simulator: Simulator) -> None:
    namespace = run(SINGLETON, {})
    assert namespace["ec2_metadata"] is ec2_metadata
    assert ec2_metadata.region == "eu-central-1"


def test_session_example_makes_real_requests_through_the_session(
    imds_simulator: Simulator,
) -> None:
    metadata = run(SESSION, {})["metadata"]
    assert metadata.instance_type == "m5.large"
    assert imds_simulator.stats.by_path["GET /latest/meta-data/instance-type"] == 1
    assert type(metadata.client.transport).__name__ == "RequestsTransport"


def test_del_one_attribute_example(imds_simulator: Simulator) -> None:
    before = ec2_metadata.network_interfaces
    run(DEL_ONE, {"ec2_metadata": ec2_metadata})
    after = ec2_metadata.network_interfaces
    assert after is not before
    assert list(after) == list(before)
    assert gets(imds_simulator, "meta-data/network/interfaces/macs/") == 2


def test_clear_all_example(imds_simulator: Simulator) -> None:
    ec2_metadata.instance_id  # noqa: B018
    ec2_metadata.region  # noqa: B018
    run(CLEAR_ALL, {"ec2_metadata": ec2_metadata})
    ec2_metadata.instance_id  # noqa: B018
    ec2_metadata.region  # noqa: B018
    assert gets(imds_simulator, "meta-data/instance-id") == 2
    assert gets(imds_simulator, "dynamic/instance-identity/document") == 2
    assert imds_simulator.stats.token_requests == 2  # "includes clearing the token"


def test_fresh_tags_example(imds_simulator: Simulator) -> None:
    assert ec2_metadata.tags["Name"] == "web-01"
    imds_simulator.set("meta-data/tags/instance/Name", "web-02")  # a live tag change on Nitro
    assert ec2_metadata.tags["Name"] == "web-01"  # cached, as the README warns
    namespace = run(FRESH_TAGS, {"ec2_metadata": ec2_metadata})
    assert namespace["ec2_metadata"].tags["Name"] == "web-02"


def test_network_interfaces_read_like_the_readme(imds_simulator: Simulator) -> None:
    # {'01:23:45:67:89:ab': NetworkInterface('01:23:45:67:89:ab')}
    interfaces = ec2_metadata.network_interfaces
    assert interfaces == {mac: NetworkInterface(mac) for mac in interfaces}
    mac = ec2_metadata.mac
    assert repr({mac: interfaces[mac]}) == "{{'{0}': NetworkInterface('{0}')}}".format(mac)


def test_spot_instance_action_has_action_and_time(imds_simulator: Simulator) -> None:
    imds_simulator.set(
        "meta-data/spot/instance-action",
        {"$json": {"action": "hibernate", "time": "2026-11-26T12:00:00Z"}, "$compact": True},
    )
    action = ec2_metadata.spot_instance_action
    assert isinstance(action, SpotInstanceAction)
    assert action.action == "hibernate"
    assert action.time.isoformat() == "2026-11-26T12:00:00+00:00"


def test_instance_tags_are_a_dict_like_mapping_of_strings(imds_simulator: Simulator) -> None:
    tags = ec2_metadata.tags
    assert dict(tags)["Role"] == "web"
    assert tags.get("nope") is None
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())


@pytest.mark.parametrize(
    "name", ["autoscaling_target_lifecycle_state", "instance_action", "spot_instance_action"]
)
def test_uncached_per_the_readme(imds_simulator: Simulator, name: str) -> None:
    getattr(ec2_metadata, name)
    getattr(ec2_metadata, name)
    assert imds_simulator.stats.requests == 1 + 2  # one token, then every access
