"""ansible-doc teaches the module and the inventory plugin from the installed collection."""

from __future__ import annotations

import json
from typing import Callable

from imds_ansible_env import Run

from ec2_metadata_core.model import EC2Metadata
from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.snapshot import snapshot, snapshot_keys


def test_module_doc(run_ansible: Callable[..., Run]) -> None:
    result = run_ansible("ansible-doc", "imds.ec2.ec2_metadata_facts")
    assert result.returncode == 0, result.output
    text = result.output
    for option in (
        "endpoint",
        "timeout",
        "attempts",
        "token_ttl",
        "metadata_token_ttl_seconds",
        "include_secrets",
        "include_user_data",
        "legacy_facts",
    ):
        assert option in text, option
    assert "ansible_facts.ec2.region" in text
    assert "off_ec2" in text
    assert "ansible_ec2_placement_availability_zone" in text
    assert "AWS_EC2_METADATA_SERVICE_ENDPOINT" in text
    assert "EXAMPLES" in text
    assert "RETURN VALUES" in text


def test_inventory_plugin_doc(run_ansible: Callable[..., Run]) -> None:
    result = run_ansible("ansible-doc", "-t", "inventory", "imds.ec2.ec2_metadata")
    assert result.returncode == 0, result.output
    for option in ("keyed_groups", "compose", "groups", "strict", "hostname", "endpoint"):
        assert option in result.output, option
    assert "az_eu_central_1b" in result.output


def test_listed_with_the_collection(run_ansible: Callable[..., Run]) -> None:
    modules = run_ansible("ansible-doc", "-l", "imds.ec2")
    assert modules.returncode == 0, modules.output
    assert "imds.ec2.ec2_metadata_facts" in modules.output
    inventories = run_ansible("ansible-doc", "-t", "inventory", "-l", "imds.ec2")
    assert "imds.ec2.ec2_metadata" in inventories.output


def test_return_documents_every_key_on_its_own(
    run_ansible: Callable[..., Run], imds_simulator: Simulator
) -> None:
    """The collection's docs stand alone: RETURN names every key of the fact (and of an interface).

    The tarball ships no project README, so ansible-doc must not send readers to one.
    """
    result = run_ansible("ansible-doc", "--json", "imds.ec2.ec2_metadata_facts")
    assert result.returncode == 0, result.output
    doc = json.loads(result.output)["imds.ec2.ec2_metadata_facts"]
    fact = doc["return"]["ansible_facts"]["contains"]["ansible_ec2"]
    assert sorted(fact["contains"]) == snapshot_keys(include_secrets=True, include_user_data=True)
    instance = snapshot(EC2Metadata(endpoint=imds_simulator.url))
    interface = instance["network_interfaces"][instance["mac"]]
    assert sorted(fact["contains"]["network_interfaces"]["contains"]) == sorted(interface)
    text = json.dumps(doc)
    assert "README" not in text
    assert "ansible_facts.ec2" in text and "ansible_ec2" in text
