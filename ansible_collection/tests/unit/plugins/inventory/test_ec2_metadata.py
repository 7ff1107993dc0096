# Copyright: ec2-metadata-core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt
# or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The inventory plugin parsing config files against the IMDS simulator of ec2-metadata-core."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader


def parse(tmp_path, text, name="instance.imds_ec2.yml"):
    path = tmp_path / name
    path.write_text(text)
    plugin = inventory_loader.get("imds.ec2.ec2_metadata")
    assert plugin.verify_file(str(path))
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), str(path), cache=False)
    return inventory


@pytest.mark.parametrize("name", ["a.ec2_metadata.yml", "imds_ec2.yaml", "ec2_metadata.yaml"])
def test_accepts_its_config_names(tmp_path, name):
    path = tmp_path / name
    path.write_text("plugin: imds.ec2.ec2_metadata\n")
    assert inventory_loader.get("imds.ec2.ec2_metadata").verify_file(str(path))


@pytest.mark.parametrize("name", ["hosts.yml", "aws_ec2.yml", "ec2_metadata.ini"])
def test_leaves_other_files_to_other_plugins(tmp_path, name):
    path = tmp_path / name
    path.write_text("plugin: imds.ec2.ec2_metadata\n")
    assert not inventory_loader.get("imds.ec2.ec2_metadata").verify_file(str(path))


def test_one_local_host_grouped_by_tag_and_zone(tmp_path, simulator):
    inventory = parse(
        tmp_path,
        "plugin: imds.ec2.ec2_metadata\n"
        "endpoint: {}\n"
        "keyed_groups:\n"
        "  - {{key: ansible_ec2.tags.Role, prefix: role}}\n"
        "  - {{key: ansible_ec2.availability_zone, prefix: az}}\n"
        "groups:\n"
        "  on_demand: ansible_ec2.instance_life_cycle == 'on-demand'\n"
        "compose:\n"
        "  instance_type: ansible_ec2.instance_type\n".format(simulator.url),
    )
    assert list(inventory.hosts) == ["localhost"]  # what ansible-pull's default --limit matches
    host = inventory.get_host("localhost")
    variables = host.get_vars()
    assert variables["ansible_connection"] == "local"
    assert variables["ansible_ec2"]["region"] == "eu-central-1"
    assert "ec2" not in variables
    assert variables["instance_type"] == "m5.large"
    groups = {group.name for group in host.get_groups()}
    assert {"role_web", "az_eu_central_1b", "on_demand"} <= groups
    assert "iam_security_credentials" not in variables["ansible_ec2"]


def test_hostname_option(tmp_path, simulator):
    inventory = parse(
        tmp_path,
        "plugin: imds.ec2.ec2_metadata\nendpoint: {}\nhostname: web-01\n".format(simulator.url),
    )
    assert list(inventory.hosts) == ["web-01"]


def test_unreachable_endpoint_is_a_parser_error(tmp_path):
    with pytest.raises(AnsibleParserError, match="cannot read EC2 instance metadata"):
        parse(
            tmp_path,
            "plugin: imds.ec2.ec2_metadata\n"
            "endpoint: http://127.0.0.1:9\n"
            "attempts: 1\n"
            "timeout: 0.5\n",
        )


def render(inventory, host, expression):
    """``expression`` rendered as a play would render it, with ``host``'s variables."""
    from ansible.template import Templar

    try:  # ansible-core 2.19: only text marked trusted is a template
        from ansible.template import trust_as_template
    except ImportError:  # before 2.19, every plain string is one
        trust_as_template = str
    variables = inventory.get_host(host).get_vars()
    return Templar(loader=DataLoader(), variables=variables).template(
        trust_as_template(expression)
    )


def test_values_from_imds_are_never_templated(tmp_path, simulator):
    simulator.set_tag("Owner", "{{ 6 * 7 }}")
    inventory = parse(
        tmp_path,
        "plugin: imds.ec2.ec2_metadata\n"
        "endpoint: {}\n"
        "compose:\n"
        "  owner: ansible_ec2.tags.Owner\n".format(simulator.url),
    )
    assert render(inventory, "localhost", "{{ 6 * 7 }}!") == "42!"  # the renderer renders
    assert render(inventory, "localhost", "{{ ansible_ec2.tags.Owner }}!") == "{{ 6 * 7 }}!"
    assert render(inventory, "localhost", "{{ ansible_ec2.tags | to_json }}").count("{{ 6 * 7 }}")
    assert render(inventory, "localhost", "{{ owner }}!") == "{{ 6 * 7 }}!"
