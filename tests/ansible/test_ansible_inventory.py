"""imds.ec2.ec2_metadata: the instance as a one-host inventory, grouped by tag and zone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from imds_ansible_env import Run

from ec2_metadata_core.simulator import Simulator

pytestmark = pytest.mark.slow

INSTANCE_ID = "i-0123456789abcdef0"
UNSAFE = "__ansible_unsafe"  # how ansible-inventory --list marks values not to template
CONFIG = """\
plugin: imds.ec2.ec2_metadata
keyed_groups:
  - key: ec2.tags.Role
    prefix: role
  - key: ec2.availability_zone
    prefix: az
groups:
  asg_member: "'aws:autoscaling:groupName' in ec2.tags"
compose:
  instance_type: ec2.instance_type
"""


def plain(value: Any) -> Any:
    """The JSON of ``ansible-inventory --list`` without the markers of untrusted strings.

    Every value from instance metadata is marked: a tag holding ``{{ }}`` must
    never be templated.
    """
    if isinstance(value, dict):
        if set(value) == {UNSAFE}:
            return value[UNSAFE]
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def test_host_lands_in_tag_and_zone_groups(
    imds_simulator: Simulator,
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
) -> None:
    config = write("site.imds_ec2.yml", CONFIG)
    result = run_ansible("ansible-inventory", "-i", str(config), "--list")
    assert result.returncode == 0, result.output
    inventory = plain(json.loads(result.output[result.output.index("{") :]))
    for group in ("role_web", "az_eu_central_1b", "asg_member"):
        assert inventory[group]["hosts"] == [INSTANCE_ID], group
    host = inventory["_meta"]["hostvars"][INSTANCE_ID]
    assert host["ansible_connection"] == "local"
    assert host["instance_type"] == "m5.large"
    assert host["ec2"]["region"] == "eu-central-1"
    assert host["ec2"]["tags"]["aws:autoscaling:groupName"] == "web-asg"
    for secret in ("ASIASIMULATORKEY", "simulator-secret", "simulator-user-data-secret"):
        assert secret not in result.output


def test_pull_style_playbook_targets_the_tag_group(
    imds_simulator: Simulator,
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
) -> None:
    """What ansible-pull on a self-configuring instance does: play on its own groups."""
    config = write("instance.ec2_metadata.yml", CONFIG + "hostname: localhost\n")
    playbook = write(
        "site.yml",
        """
- hosts: role_web:&az_eu_central_1b
  gather_facts: false
  tasks:
    - ansible.builtin.assert:
        that:
          - inventory_hostname == 'localhost'
          - ec2.instance_id == 'i-0123456789abcdef0'
          - ec2.network_interfaces[ec2.mac].subnet_id == 'subnet-0a1b2c3d4e5f60001'
    - name: Modules run locally too
      ansible.builtin.command: "true"
      changed_when: false
""",
    )
    result = run_ansible("ansible-playbook", "-i", str(config), str(playbook))
    assert result.returncode == 0, result.output
    assert "ok=2" in result.output


def test_off_ec2_the_source_fails_with_the_reason(
    run_ansible: Callable[..., Run], write: Callable[[str, str], Path]
) -> None:
    # conftest points the AWS variable at a loopback port where nothing listens.
    config = write("site.imds_ec2.yml", CONFIG)
    result = run_ansible(
        "ansible-inventory",
        "-i",
        str(config),
        "--list",
        env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"},
    )
    assert result.returncode != 0
    assert "cannot read EC2 instance metadata" in result.output
    assert "not on EC2" in result.output
    assert "Traceback" not in result.output
