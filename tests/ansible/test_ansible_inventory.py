"""imds.ec2.ec2_metadata: the instance as a one-host inventory, grouped by tag and zone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from imds_ansible_env import Run, git_repo, unmarked

from ec2_metadata_core.simulator import Simulator

pytestmark = pytest.mark.slow

INSTANCE_ID = "i-0123456789abcdef0"
CONFIG = """\
plugin: imds.ec2.ec2_metadata
keyed_groups:
  - key: ansible_ec2.tags.Role
    prefix: role
  - key: ansible_ec2.availability_zone
    prefix: az
groups:
  asg_member: "'aws:autoscaling:groupName' in ansible_ec2.tags"
compose:
  instance_type: ansible_ec2.instance_type
"""


def test_host_lands_in_tag_and_zone_groups(
    imds_simulator: Simulator,
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
) -> None:
    config = write("site.imds_ec2.yml", CONFIG)
    result = run_ansible("ansible-inventory", "-i", str(config), "--list")
    assert result.returncode == 0, result.output
    inventory = unmarked(json.loads(result.output[result.output.index("{") :]))
    for group in ("role_web", "az_eu_central_1b", "asg_member"):
        assert inventory[group]["hosts"] == ["localhost"], group
    host = inventory["_meta"]["hostvars"]["localhost"]
    assert host["ansible_connection"] == "local"
    assert host["instance_type"] == "m5.large"
    assert host["ansible_ec2"]["region"] == "eu-central-1"
    assert host["ansible_ec2"]["tags"]["aws:autoscaling:groupName"] == "web-asg"
    assert "ec2" not in host  # the name stays free for the user's own variable
    for secret in ("ASIASIMULATORKEY", "simulator-secret", "simulator-user-data-secret"):
        assert secret not in result.output


def test_pull_style_playbook_targets_the_tag_group(
    imds_simulator: Simulator,
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
) -> None:
    """What ansible-pull on a self-configuring instance does: play on its own groups."""
    config = write("instance.ec2_metadata.yml", CONFIG + "hostname: " + INSTANCE_ID + "\n")
    playbook = write(
        "site.yml",
        """
- hosts: role_web:&az_eu_central_1b
  gather_facts: false
  tasks:
    - ansible.builtin.assert:
        that:
          - inventory_hostname == 'i-0123456789abcdef0'
          - ansible_ec2.instance_id == 'i-0123456789abcdef0'
          - ansible_ec2.network_interfaces[ansible_ec2.mac].subnet_id
              == 'subnet-0a1b2c3d4e5f60001'
    - name: Modules run locally too
      ansible.builtin.command: "true"
      changed_when: false
""",
    )
    result = run_ansible("ansible-playbook", "-i", str(config), str(playbook))
    assert result.returncode == 0, result.output
    assert "ok=2" in result.output


# local.yml of a repository ansible-pull checks out: it proves the inventory
# plugin's host ran it and leaves a mark ansible-pull's caller can see.
PULL_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Gather the facts as well
      imds.ec2.ec2_metadata_facts:
    - ansible.builtin.assert:
        that:
          - ansible_ec2.instance_id == 'i-0123456789abcdef0'
          - ansible_facts.ec2.region == 'eu-central-1'
          - "'role_web' in group_names"
    - ansible.builtin.copy:
        dest: "{{ mark }}"
        content: "{{ ansible_ec2.instance_id }} {{ group_names | sort | join(',') }}"
        mode: "0600"
"""


def test_ansible_pull_with_the_defaults(
    imds_simulator: Simulator,
    run_ansible: Callable[..., Run],
    tmp_path: Path,
) -> None:
    """The documented invocation: `ansible-pull -U REPO -i instance.imds_ec2.yml local.yml`.

    ansible-pull's default --limit is the local host names; the plugin's
    default host name, localhost, is among them.
    """
    url = git_repo(tmp_path / "site", {"instance.imds_ec2.yml": CONFIG, "local.yml": PULL_PLAY})
    mark = tmp_path / "pulled"
    result = run_ansible(
        "ansible-pull",
        "-U",
        url,
        "-d",
        str(tmp_path / "checkout"),
        "-i",
        "instance.imds_ec2.yml",
        "-e",
        json.dumps({"mark": str(mark)}),
        "local.yml",
    )
    assert result.returncode == 0, result.output
    assert "no hosts matched" not in result.output
    assert mark.read_text() == INSTANCE_ID + " asg_member,az_eu_central_1b,role_web"


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
