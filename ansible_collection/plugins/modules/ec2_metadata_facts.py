#!/usr/bin/python
# Copyright: ec2-metadata-core contributors
# MIT License (see LICENSE in the project repository)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_metadata_facts
short_description: Gather EC2 instance metadata (IMDSv2) as the C(ec2) fact
version_added: 0.1.0
author:
  - ec2-metadata-core maintainers (!UNKNOWN)
description:
  - Reads the EC2 instance metadata service (IMDS) of the host it runs on and sets the fact
    C(ec2), one dictionary with the whole instance, so playbooks read C(ansible_facts.ec2.region),
    C(ansible_facts.ec2.tags['aws:autoscaling:groupName']) or
    C(ansible_facts.ec2.network_interfaces[mac].subnet_id).
  - Uses IMDSv2 (a session token), retries on throttling and asks for many paths at once, so a
    full gather takes a few round trips.
  - The client travels inside the module, built from the Python standard library only; the
    managed host needs nothing but Python.
  - Keys of C(ec2) are the attribute names of the C(ec2-metadata) library (C(availability_zone),
    C(instance_type), C(private_ipv4), ...). A value the instance does not have (no public IP,
    no IAM role, no spot notice) is V(null); a value that could not be read fails the task.
  - O(legacy_facts=true) also sets the flat C(ansible_ec2_*) facts of
    M(amazon.aws.ec2_metadata_facts), so playbooks written for that module keep working.
  - Run it on the instance itself, or list it in E(ANSIBLE_FACTS_MODULES) next to
    M(ansible.builtin.setup); off EC2 it fails with a message naming the likely cause.
notes:
  - Credentials and user data stay out of the facts unless O(include_secrets) or
    O(include_user_data) asks for them; when the facts hold either, the module's action marks the
    task result C(no_log), so output and logs show it censored, while the facts are still set.
    Gathered through E(ANSIBLE_FACTS_MODULES) the result is not censored; set C(no_log) on the
    play for that.
  - Settings not given as options are taken, as the AWS SDKs take them, from the managed host's
    environment (E(AWS_EC2_METADATA_SERVICE_ENDPOINT), E(AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE),
    E(AWS_EC2_METADATA_DISABLED), E(AWS_EC2_METADATA_V1_DISABLED), E(AWS_METADATA_SERVICE_TIMEOUT),
    E(AWS_METADATA_SERVICE_NUM_ATTEMPTS)) and its shared AWS config file (E(AWS_CONFIG_FILE),
    E(AWS_PROFILE)).
  - Instance tags are only in instance metadata when the instance allows it
    (C(aws ec2 modify-instance-metadata-options --instance-metadata-tags enabled)); otherwise
    C(ec2.tags) is V(null).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.facts
attributes:
  action:
    support: full
    details: The action censors results that hold credentials or user data.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: The module only reads; check mode gathers the same facts.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
options:
  endpoint:
    description:
      - Base URL of the instance metadata service, such as V(http://169.254.169.254) or
        V(http://[fd00:ec2::254]) (IPv6, Nitro instances).
      - When not set, E(AWS_EC2_METADATA_SERVICE_ENDPOINT), then
        E(AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE), then the shared AWS config file decide; the
        default is the IPv4 endpoint.
    type: str
  timeout:
    description:
      - Seconds to wait for each answer.
      - When not set, E(AWS_METADATA_SERVICE_TIMEOUT) or the shared config decide; the default
        is V(1).
    type: float
  attempts:
    description:
      - How many times to try each request that times out, is refused or is throttled.
      - When not set, E(AWS_METADATA_SERVICE_NUM_ATTEMPTS) or the shared config decide; the
        default is V(3).
    type: int
  allow_imdsv1:
    description:
      - Fall back to IMDSv1 (no session token) when the token request is refused with 403, 404
        or 405.
      - When not set, only E(AWS_EC2_METADATA_V1_DISABLED=false) or the shared config allow it;
        by default the module never falls back.
    type: bool
  token_ttl:
    description:
      - Lifetime in seconds asked for the IMDSv2 session token, V(1) to V(21600).
      - The alias is the option name of M(amazon.aws.ec2_metadata_facts).
    type: int
    default: 21600
    aliases: [metadata_token_ttl_seconds]
  include_secrets:
    description:
      - Add the IAM role credentials (C(ec2.iam_security_credentials)) and the instance identity
        credentials (C(ec2.identity_credentials_ec2)); with O(legacy_facts=true) also their
        C(ansible_ec2_iam_security_credentials_*) names.
      - They are live credentials, and facts are copied to fact caches and every play's
        variables.
    type: bool
    default: false
  include_user_data:
    description:
      - Add the user data as C(ec2.user_data) (and C(ansible_ec2_user_data) with
        O(legacy_facts=true)).
      - User data often holds secrets.
    type: bool
    default: false
  legacy_facts:
    description:
      - Also set the flat facts of M(amazon.aws.ec2_metadata_facts), named after the metadata
        path with C(/), C(-) and C(:) turned into C(_), such as
        C(ansible_ec2_placement_availability_zone),
        C(ansible_ec2_network_interfaces_macs_<mac>_subnet_id) and C(ansible_ec2_instance_tags).
      - Differences from that module - absent values have no name (V(null) for
        C(ansible_ec2_user_data) and C(ansible_ec2_public_key), not the string V(None));
        C(ansible_ec2_user_data) and credentials only appear when asked for; when two tags give
        one name (C(env-tier), C(env_tier)) the tag already spelled that way keeps it;
        C(ansible_ec2_instance_tags) holds every tag.
    type: bool
    default: false
seealso:
  - module: amazon.aws.ec2_metadata_facts
  - name: Instance metadata categories
    description: What each path of the instance metadata service holds.
    link: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-categories.html
"""

EXAMPLES = r"""
- name: Gather the instance's metadata
  imds.ec2.ec2_metadata_facts:

- name: Use it
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts.ec2.instance_id }} runs in {{ ansible_facts.ec2.region }}
      ({{ ansible_facts.ec2.availability_zone }}) in the group
      {{ ansible_facts.ec2.tags['aws:autoscaling:groupName'] | default('none') }}

- name: The subnet of every network interface
  ansible.builtin.debug:
    msg: "{{ item.key }} is in {{ item.value.subnet_id }}"
  loop: "{{ ansible_facts.ec2.network_interfaces | dict2items }}"

- name: Drop-in for amazon.aws.ec2_metadata_facts (flat ansible_ec2_* names as well)
  imds.ec2.ec2_metadata_facts:
    legacy_facts: true
    metadata_token_ttl_seconds: 240

- name: A slow or distant endpoint (a container past the hop limit, IPv6)
  imds.ec2.ec2_metadata_facts:
    endpoint: http://[fd00:ec2::254]
    timeout: 3
    attempts: 5

- name: The role's credentials, for a task that needs them (the result is censored)
  imds.ec2.ec2_metadata_facts:
    include_secrets: true

# Gather it with every fact gathering: in ansible.cfg
#   [defaults]
#   facts_modules = ansible.builtin.setup, imds.ec2.ec2_metadata_facts
# or ANSIBLE_FACTS_MODULES=ansible.builtin.setup,imds.ec2.ec2_metadata_facts;
# options then come from module_defaults:
- name: A play that gathers EC2 facts with the setup facts
  hosts: all
  gather_facts: true
  module_defaults:
    imds.ec2.ec2_metadata_facts:
      legacy_facts: true
  tasks:
    - name: Show the region
      ansible.builtin.debug:
        var: ansible_facts.ec2.region
"""

RETURN = r"""
ansible_facts:
  description: The facts set.
  returned: success
  type: complex
  contains:
    ec2:
      description:
        - The instance, one key per metadata value, nested where the metadata is (network interfaces
          by MAC, tags by key, public keys by name).
        - The keys below are the ones most used; every key is documented in the project README.
      returned: success
      type: complex
      contains:
        account_id:
          description: The AWS account that owns the instance.
          type: str
          returned: success
          sample: "123456789012"
        availability_zone:
          description: The availability zone.
          type: str
          returned: success
          sample: eu-central-1b
        availability_zone_id:
          description: The cross-account ID of the availability zone.
          type: str
          returned: success
          sample: euc1-az3
        instance_id:
          description: The instance ID.
          type: str
          returned: success
          sample: i-0123456789abcdef0
        instance_type:
          description: The instance type.
          type: str
          returned: success
          sample: m5.large
        region:
          description: The region.
          type: str
          returned: success
          sample: eu-central-1
        private_ipv4:
          description: The private IPv4 address of the primary interface.
          type: str
          returned: success
          sample: 10.0.1.23
        public_ipv4:
          description: The public IPv4 address, V(null) when the instance has none.
          type: str
          returned: success
          sample: 203.0.113.25
        tags:
          description:
            - The instance tags, by key; V(null) when tags are not enabled in instance metadata.
            - Keys may hold C(:) and C(.), so read them with brackets -
              C(ec2.tags['aws:autoscaling:groupName']).
          type: dict
          returned: success
          sample: {"Name": "web-01", "Role": "web", "aws:autoscaling:groupName": "web-asg"}
        network_interfaces:
          description: Every attached interface, by MAC address.
          type: dict
          returned: success
          sample:
            "02:1a:2b:3c:4d:5e":
              device_number: 0
              interface_id: eni-0a1b2c3d4e5f60001
              private_ipv4s: ["10.0.1.23", "10.0.1.24"]
              subnet_id: subnet-0a1b2c3d4e5f60001
              vpc_id: vpc-0a1b2c3d4e5f60001
        iam_info:
          description: The instance profile, V(null) without one.
          type: dict
          returned: success
          sample:
            InstanceProfileArn: arn:aws:iam::123456789012:instance-profile/web
            InstanceProfileId: AIPAEXAMPLE
        iam_role_names:
          description:
            - The role names that have credentials.
            - The role can be named unlike its instance profile.
          type: list
          elements: str
          returned: success
          sample: ["web-app-role"]
        iam_security_credentials:
          description: The role's temporary credentials, V(null) without a role.
          type: dict
          returned: when O(include_secrets=true)
          sample:
            AccessKeyId: ASIA...
            SecretAccessKey: "..."
            Token: "..."
            Expiration: "2026-11-26T16:38:42Z"
        identity_credentials_ec2:
          description: The instance identity credentials, V(null) when absent.
          type: dict
          returned: when O(include_secrets=true)
          sample: {"AccessKeyId": "ASIA...", "SecretAccessKey": "...", "Token": "..."}
        user_data:
          description:
            - The user data, V(null) without any.
            - C(encoding) is V(text) (UTF-8, gunzipped when it was gzip-compressed, then
              C(compression) is V(gzip)) or V(base64).
          type: dict
          returned: when O(include_user_data=true)
          sample: {"encoding": "text", "compression": null, "content": "#cloud-config\n"}
        spot_instance_action:
          description: The pending spot action (C(action), C(time)), V(null) when none.
          type: dict
          returned: success
          sample: {"action": "terminate", "time": "2026-11-26T12:00:00Z"}
    ansible_ec2_placement_availability_zone:
      description: One of the flat names of M(amazon.aws.ec2_metadata_facts), see O(legacy_facts).
      type: str
      returned: when O(legacy_facts=true)
      sample: eu-central-1b
    ansible_ec2_instance_tags:
      description: Every tag, by key.
      type: dict
      returned: when O(legacy_facts=true)
      sample: {"Role": "web"}
    ansible_ec2_instance_tags_keys:
      description: The tag keys, in the order IMDS lists them.
      type: list
      elements: str
      returned: when O(legacy_facts=true)
      sample: ["Name", "Role"]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.imds.ec2.plugins.module_utils.ansible_face import (  # noqa: E402
    failure_message,
    gather,
)
from ansible_collections.imds.ec2.plugins.module_utils.errors import IMDSError  # noqa: E402
from ansible_collections.imds.ec2.plugins.module_utils.legacy_facts import legacy_facts  # noqa: E402

ARGUMENT_SPEC = dict(
    endpoint=dict(type="str"),
    timeout=dict(type="float"),
    attempts=dict(type="int"),
    allow_imdsv1=dict(type="bool"),
    token_ttl=dict(type="int", default=21600, aliases=["metadata_token_ttl_seconds"], no_log=False),
    include_secrets=dict(type="bool", default=False, no_log=False),
    include_user_data=dict(type="bool", default=False),
    legacy_facts=dict(type="bool", default=False),
)


def gather_facts(params):
    """The facts for ``params``; raises ``IMDSError`` when the metadata cannot be read."""
    bodies = {} if params["legacy_facts"] else None
    instance = gather(
        endpoint=params["endpoint"],
        timeout=params["timeout"],
        attempts=params["attempts"],
        allow_imdsv1=params["allow_imdsv1"],
        token_ttl=params["token_ttl"],
        include_secrets=params["include_secrets"],
        include_user_data=params["include_user_data"],
        raw=bodies,
    )
    facts = {"ec2": instance}
    if bodies is not None:
        facts.update(
            legacy_facts(bodies, instance, params["include_secrets"], params["include_user_data"])
        )
    return facts


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        facts = gather_facts(module.params)
    except IMDSError as exc:
        module.fail_json(msg=failure_message(exc))
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
