# Copyright: ec2-metadata-core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt
# or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module run in-process against the IMDS simulator of ec2-metadata-core."""

from __future__ import annotations

import contextlib
import json
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible_collections.imds.ec2.plugins.modules import ec2_metadata_facts

try:  # ansible-core 2.19 and later
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # 2.18: the arguments AnsibleModule reads when none come on stdin

    @contextlib.contextmanager
    def patch_module_args(args):
        encoded = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", encoded):
            yield


def run_module(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit):
        ec2_metadata_facts.main()
    return json.loads(capsys.readouterr().out)


def test_facts_hold_the_snapshot(simulator, capsys):
    result = run_module(capsys, endpoint=simulator.url)
    ec2 = result["ansible_facts"]["ansible_ec2"]
    assert result["changed"] is False
    assert ec2["region"] == "eu-central-1"
    assert ec2["tags"]["aws:autoscaling:groupName"] == "web-asg"
    assert ec2["network_interfaces"][ec2["mac"]]["subnet_id"].startswith("subnet-")
    assert "iam_security_credentials" not in ec2
    assert "user_data" not in ec2
    assert not [name for name in result["ansible_facts"] if name.startswith("ansible_ec2_")]


def test_legacy_facts_on_request(simulator, capsys):
    result = run_module(capsys, endpoint=simulator.url, legacy_facts=True)
    facts = result["ansible_facts"]
    assert facts["ansible_ec2_placement_availability_zone"] == "eu-central-1b"
    assert facts["ansible_ec2_instance_tags"]["Role"] == "web"
    assert "simulator-secret" not in json.dumps(facts)


def test_secrets_on_request(simulator, capsys):
    result = run_module(
        capsys, endpoint=simulator.url, include_secrets=True, include_user_data=True
    )
    ec2 = result["ansible_facts"]["ansible_ec2"]
    assert ec2["iam_security_credentials"]["AccessKeyId"] == "ASIASIMULATORKEY0001"
    assert "simulator-user-data-secret" in ec2["user_data"]["content"]


def test_amazon_aws_option_name_is_an_alias(simulator, capsys):
    result = run_module(capsys, endpoint=simulator.url, metadata_token_ttl_seconds=60)
    assert result["ansible_facts"]["ansible_ec2"]["instance_id"].startswith("i-")


def test_bad_setting_fails_with_its_name(simulator, capsys):
    result = run_module(capsys, endpoint=simulator.url, token_ttl=0)
    assert result["failed"] is True
    assert "token_ttl" in result["msg"]


def test_refused_endpoint_fails_with_one_line(capsys):
    result = run_module(capsys, endpoint="http://127.0.0.1:9", timeout=0.5, attempts=1)
    assert result["failed"] is True
    assert result["msg"].startswith("cannot read EC2 instance metadata: ")
    assert "127.0.0.1:9" in result["msg"]
    assert "not on EC2" in result["msg"]
    assert "\n" not in result["msg"]


def test_off_ec2_ignore_sets_null_and_says_why(capsys):
    result = run_module(
        capsys, endpoint="http://127.0.0.1:9", timeout=0.5, attempts=1, off_ec2="ignore"
    )
    assert "failed" not in result
    assert result["ansible_facts"] == {"ansible_ec2": None}
    assert result["msg"].startswith("no EC2 instance metadata here: cannot reach IMDS at")


def test_a_404_for_a_value_every_instance_has_fails_naming_the_path(simulator, capsys):
    # The module succeeded with instance_id null (issue 18).
    simulator.delete("meta-data/instance-id")
    result = run_module(capsys, endpoint=simulator.url)
    assert result["failed"] is True
    assert "/latest/meta-data/instance-id" in result["msg"] and "\n" not in result["msg"]
    assert "ansible_facts" not in result


def test_endpoint_mode_is_an_option_and_not_beside_an_endpoint(simulator, capsys):
    # The EDA source had endpoint_mode; the module had none.
    result = run_module(capsys, endpoint=simulator.url, endpoint_mode="IPv6")
    assert result["failed"] is True
    assert "endpoint and endpoint_mode" in result["msg"]
    result = run_module(capsys, endpoint_mode="IPv7")
    assert result["failed"] is True and "endpoint_mode" in result["msg"]
