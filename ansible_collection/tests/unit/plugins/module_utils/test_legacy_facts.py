# Copyright: ec2-metadata-core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt
# or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The amazon.aws-compatible names, from bodies as a snapshot hands them out."""

from __future__ import annotations

from ansible_collections.imds.ec2.plugins.module_utils.legacy_facts import legacy_facts, legacy_name

MAC = "02:1a:2b:3c:4d:5e"
BODIES = {
    "meta-data/": b"ami-id\nplacement/\nnetwork/",
    "meta-data/ami-id": b"ami-0a1b2c3d4e5f67890",
    "meta-data/placement/availability-zone": b"eu-central-1b",
    "meta-data/public-ipv4": None,
    "meta-data/security-groups": b"web-sg\nssh-from-bastion",
    "meta-data/network/interfaces/macs/" + MAC + "/subnet-id": b"subnet-0a1b",
    "meta-data/network/interfaces/macs/" + MAC + "/local-ipv4s": b"10.0.1.23\n10.0.1.24",
    "meta-data/iam/info": (
        b'{"Code": "Success", "InstanceProfileArn": "arn:aws:iam::1:instance-profile/p"}'
    ),
    "meta-data/iam/security-credentials/": b"web-app-role",
    "meta-data/iam/security-credentials/web-app-role": (
        b'{"AccessKeyId": "ASIAKEY", "SecretAccessKey": "s3cret"}'
    ),
    "meta-data/tags/instance/aws%3Aautoscaling%3AgroupName": b"web-asg",
    "meta-data/public-keys/0/openssh-key": b"ssh-ed25519 AAAA key",
    "dynamic/instance-identity/document": (
        b'{"region": "eu-central-1", "accountId": "123456789012"}'
    ),
    "user-data": b"#cloud-config\n",
}
SNAPSHOT = {
    "region": "eu-central-1",
    "iam_role_names": ["web-app-role"],
    "network_interfaces": {MAC: {"subnet_id": "subnet-0a1b"}},
    "tags": {
        "Role": "web",
        "aws:autoscaling:groupName": "web-asg",
        "env-tier": "front",
        "env_tier": "back",
    },
    "user_data": {"encoding": "text", "compression": None, "content": "#cloud-config\n"},
}


def test_names_are_paths_with_separators_made_underscores():
    assert legacy_name("placement/availability-zone") == "ansible_ec2_placement_availability_zone"
    assert (
        legacy_name("network/interfaces/macs/0a:1b/subnet-id")
        == "ansible_ec2_network_interfaces_macs_0a_1b_subnet_id"
    )


def test_values_read_by_path():
    facts = legacy_facts(BODIES, SNAPSHOT)
    assert facts["ansible_ec2_ami_id"] == "ami-0a1b2c3d4e5f67890"
    assert facts["ansible_ec2_placement_availability_zone"] == "eu-central-1b"
    assert facts["ansible_ec2_network_interfaces_macs_02_1a_2b_3c_4d_5e_subnet_id"] == "subnet-0a1b"
    assert (
        facts["ansible_ec2_network_interfaces_macs_02_1a_2b_3c_4d_5e_local_ipv4s"]
        == "10.0.1.23\n10.0.1.24"
    )
    assert facts["ansible_ec2_network_interfaces_macs_02_1a_2b_3c_4d_5e_mac"] == MAC
    assert facts["ansible_ec2_security_groups"] == "web-sg,ssh-from-bastion"
    assert facts["ansible_ec2_placement_region"] == "eu-central-1"
    assert facts["ansible_ec2_public_key"] == "ssh-ed25519 AAAA key"


def test_json_documents_also_give_one_name_per_lowercased_key():
    facts = legacy_facts(BODIES, SNAPSHOT)
    assert facts["ansible_ec2_instance_identity_document_accountid"] == "123456789012"
    assert facts["ansible_ec2_instance_identity_document_region"] == "eu-central-1"
    assert facts["ansible_ec2_iam_info_instanceprofilearn"] == "arn:aws:iam::1:instance-profile/p"
    assert facts["ansible_ec2_iam_instance_profile_role"] == "web-app-role"


def test_absent_values_and_listings_have_no_name():
    facts = legacy_facts(BODIES, SNAPSHOT)
    assert "ansible_ec2_public_ipv4" not in facts
    assert "ansible_ec2_" not in facts
    assert not [name for name in facts if name.startswith("ansible_ec2_public_keys")]


def test_tags_by_name_dict_and_keys():
    facts = legacy_facts(BODIES, SNAPSHOT)
    assert facts["ansible_ec2_tags_instance_aws_autoscaling_groupName"] == "web-asg"
    assert facts["ansible_ec2_tags_instance_Role"] == "web"
    assert facts["ansible_ec2_instance_tags"]["aws:autoscaling:groupName"] == "web-asg"
    assert facts["ansible_ec2_instance_tags_keys"] == [
        "Role",
        "aws:autoscaling:groupName",
        "env-tier",
        "env_tier",
    ]


def test_clashing_tags_keep_the_one_already_named_so():
    facts = legacy_facts(BODIES, SNAPSHOT)
    assert facts["ansible_ec2_tags_instance_env_tier"] == "back"
    assert facts["ansible_ec2_instance_tags"]["env-tier"] == "front"


def test_tags_disabled_give_empty_tags():
    facts = legacy_facts({}, {"tags": None})
    assert facts["ansible_ec2_instance_tags"] == {}
    assert facts["ansible_ec2_instance_tags_keys"] == []
    assert facts["ansible_ec2_public_key"] is None


def test_secrets_only_when_asked():
    plain = legacy_facts(BODIES, SNAPSHOT)
    assert not [name for name in plain if "security_credentials_web_app_role" in name]
    assert "ansible_ec2_user_data" not in plain
    assert "s3cret" not in repr(plain)
    full = legacy_facts(BODIES, SNAPSHOT, include_secrets=True, include_user_data=True)
    assert full["ansible_ec2_iam_security_credentials_web_app_role_secretaccesskey"] == "s3cret"
    assert full["ansible_ec2_user_data"] == "#cloud-config\n"
