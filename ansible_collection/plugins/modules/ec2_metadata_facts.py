#!/usr/bin/python
# Copyright: ec2-metadata-core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt
# or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_metadata_facts
short_description: Gather EC2 instance metadata (IMDSv2) as the fact C(ansible_facts.ec2)
version_added: 0.1.0
author:
  - ec2-metadata-core maintainers (!UNKNOWN)
description:
  - Reads the EC2 instance metadata service (IMDS) of the host it runs on and sets one fact, the
    whole instance in one dictionary, so playbooks read C(ansible_facts.ec2.region),
    C(ansible_facts.ec2.tags['aws:autoscaling:groupName']) or
    C(ansible_facts.ec2.network_interfaces[mac].subnet_id).
  - The fact is returned as C(ansible_ec2), as Ansible's own facts are, so it is
    C(ansible_facts.ec2) and, with facts injected as variables (the default), also the variable
    C(ansible_ec2). A variable C(ec2) of your own (in C(host_vars), say) is left alone.
  - Uses IMDSv2 (a session token), retries on throttling and asks for many paths at once, so a
    full gather takes a few round trips.
  - The client travels inside the module, built from the Python standard library only; the
    managed host needs nothing but Python.
  - Keys of the fact are the attribute names of the C(ec2-metadata) library (C(availability_zone),
    C(instance_type), C(private_ipv4), ...); the return values under RV(ansible_facts.ansible_ec2)
    below name every key. A value
    the instance does not have (no public IP, no IAM role, no spot notice) is V(null); a value that
    could not be read fails the task.
  - O(legacy_facts=true) also sets the flat C(ansible_ec2_*) facts of
    M(amazon.aws.ec2_metadata_facts), so playbooks written for that module keep working.
  - Run it on the instance itself, or list it in E(ANSIBLE_FACTS_MODULES) next to
    M(ansible.builtin.setup). Off EC2 it fails with a message naming the likely cause, or, with
    O(off_ec2=ignore), sets C(ansible_facts.ec2) to V(null) and succeeds (mixed fleets).
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
    C(ansible_facts.ec2.tags) is V(null).
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
      - Give O(endpoint) or O(endpoint_mode), not both.
    type: str
  endpoint_mode:
    description:
      - Which of the two IMDS addresses, when O(endpoint) is not set.
      - When not set, E(AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE) or the shared config decide; the
        default is V(IPv4).
    type: str
    choices: [IPv4, IPv6]
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
      - Fall back to IMDSv1 (no session token) when the token request is refused with 400, 403,
        404 or 405.
      - When not set, only E(AWS_EC2_METADATA_V1_DISABLED=false) or C(ec2_metadata_v1_disabled =
        false) in the shared config allow it; by default the module never falls back.
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
      - Add the IAM role credentials (C(ansible_facts.ec2.iam_security_credentials)) and the
        instance identity credentials (C(ansible_facts.ec2.identity_credentials_ec2)); with
        O(legacy_facts=true) also their C(ansible_ec2_iam_security_credentials_*) names.
      - They are live credentials, and facts are copied to fact caches and every play's
        variables.
    type: bool
    default: false
  include_user_data:
    description:
      - Add the user data as C(ansible_facts.ec2.user_data) (and C(ansible_ec2_user_data) with
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
  off_ec2:
    description:
      - What to do on a host where no instance metadata service answers the token request
        (connection refused, no route, the token request timing out, or 404/405 - no IMDSv2),
        that is, a host not on EC2.
      - V(fail) fails the task (and a fact gathering that lists the module in
        E(ANSIBLE_FACTS_MODULES)) with one line naming the likely cause.
      - V(ignore) succeeds, sets C(ansible_facts.ec2) to V(null) and says why in C(msg), for
        plays over fleets with hosts on and off EC2; test it with the condition
        C(ansible_facts.ec2 is not none). An EC2 instance whose IMDS is turned off (403)
        is treated the same way, with a warning.
      - Either way an IMDS that answered the token request and then failed (timeouts, 5xx after
        the retries) fails the task; a silent endpoint costs O(attempts) times O(timeout) before
        it counts as absent, so lower them for mixed fleets.
    type: str
    choices: [fail, ignore]
    default: fail
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
      ({{ ansible_ec2.availability_zone }}) in the group
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
# options then come from module_defaults. In a fleet with hosts off EC2,
# off_ec2=ignore gives them ansible_facts.ec2 = null instead of a failure.
- name: A play that gathers EC2 facts with the setup facts
  hosts: all
  gather_facts: true
  module_defaults:
    imds.ec2.ec2_metadata_facts:
      off_ec2: ignore
      timeout: 0.5
      attempts: 2
  tasks:
    - name: Show the region of the hosts on EC2
      ansible.builtin.debug:
        var: ansible_facts.ec2.region
      when: ansible_facts.ec2 is not none
"""

RETURN = r"""
ansible_facts:
  description: The facts set.
  returned: always
  type: complex
  contains:
    ansible_ec2:
      description:
        - The instance, one key per metadata value, nested where the metadata is (network
          interfaces by MAC, tags by key, public keys by name). Playbooks read it as
          C(ansible_facts.ec2) or C(ansible_ec2).
        - V(null) with O(off_ec2=ignore) on a host not on EC2.
        - Keys the module could not read fail the task; keys the instance does not have are
          V(null) (or V([]), V({}) for lists and maps).
      returned: always
      type: complex
      contains:
          account_id:
            description: The current AWS account ID.
            type: str
            returned: success
            sample: '123456789012'
          ami_id:
            description: The ID of the AMI used to launch the instance.
            type: str
            returned: success
            sample: ami-0a1b2c3d4e5f67890
          ami_launch_index:
            description: The index of the instance in the launch request,
              zero-based.
            type: int
            returned: success
            sample: 0
          ami_manifest_path:
            description: The AMI manifest path in S3, or V((unknown)) on
              EBS-backed AMIs.
            type: str
            returned: success
            sample: (unknown)
          ancestor_ami_ids:
            description: AMI IDs of instances rebundled to create this AMI;
              [] if none.
            type: list
            returned: success
            elements: str
            sample:
            - ami-0f1e2d3c4b5a69780
          autoscaling_target_lifecycle_state:
            description: The target Auto Scaling lifecycle state, or V(null)
              outside an ASG.
            type: str
            returned: success
            sample: InService
          availability_zone:
            description: The current AZ.
            type: str
            returned: success
            sample: eu-central-1b
          availability_zone_id:
            description: The cross-account ID of the current AZ, or V(null).
            type: str
            returned: success
            sample: euc1-az3
          block_device_mapping:
            description: Block device mapping name -> device.
            type: dict
            returned: success
            sample:
              ami: /dev/xvda
              ebs1: sdf
              ephemeral0: sdb
              root: /dev/xvda
          domain:
            description: The domain for AWS resources in the region.
            type: str
            returned: success
            sample: amazonaws.com
          events_maintenance_history:
            description: Completed or canceled scheduled events (C(Code),
              C(Description), C(EventId), C(NotBefore), C(NotAfter), C(State)).
            type: list
            returned: success
            elements: dict
            sample:
            - NotBefore: 02 Sep 2026 03:00:00 GMT
              Code: system-maintenance
              Description: Scheduled network maintenance
              EventId: instance-event-0b1a2c3d4e5f60789
              NotAfter: 02 Sep 2026 05:00:00 GMT
              State: completed
          events_maintenance_scheduled:
            description: Active scheduled maintenance events (C(Code), C(Description),
              C(EventId), C(NotBefore), C(NotAfter), C(State)).
            type: list
            returned: success
            elements: dict
            sample:
            - NotBefore: 14 Dec 2026 09:00:43 GMT
              Code: system-reboot
              Description: scheduled reboot
              EventId: instance-event-0d59937288b749b32
              NotAfter: 14 Dec 2026 09:17:23 GMT
              State: active
          events_recommendations_rebalance:
            description: The rebalance recommendation (C(noticeTime)), or
              V(null).
            type: dict
            returned: success
            sample:
              noticeTime: '2026-11-26T09:12:31Z'
          hostname:
            description: The instance's hostname as the OS sees it (private
              DNS, IP or resource name).
            type: str
            returned: success
            sample: ip-10-0-1-23.eu-central-1.compute.internal
          iam_info:
            description: The IAM instance profile, or V(null) if no role
              is attached.
            type: dict
            returned: success
            sample:
              Code: Success
              LastUpdated: '2026-11-26T10:03:12Z'
              InstanceProfileArn: arn:aws:iam::123456789012:instance-profile/web-instance-profile
              InstanceProfileId: AIPASIMULATORPROFILE1
          iam_role_names:
            description: Names of the roles with credentials (usually one;
              [] if none).
            type: list
            returned: success
            elements: str
            sample:
            - web-app-role
          iam_security_credentials:
            description: Credentials of the role attached to the instance,
              or V(null).
            type: dict
            returned: when O(include_secrets=true)
          identity_credentials_ec2:
            description: The instance identity credentials, or V(null).
            type: dict
            returned: when O(include_secrets=true)
          identity_credentials_ec2_info:
            description: Information about the EC2 identity credentials,
              or V(null).
            type: dict
            returned: success
            sample:
              Code: Success
              LastUpdated: '2026-11-26T10:03:12Z'
              AccountId: '123456789012'
          instance_action:
            description: Whether the instance will reboot for bundling,
              usually V(none).
            type: str
            returned: success
            sample: none
          instance_id:
            description: The instance ID.
            type: str
            returned: success
            sample: i-0123456789abcdef0
          instance_identity_document:
            description: The instance identity document (C(accountId), C(region),
              C(imageId), ...).
            type: dict
            returned: success
          instance_identity_pkcs7:
            description: PKCS7 signature of the identity document, or V(null).
            type: str
            returned: success
          instance_identity_rsa2048:
            description: RSA-2048 PKCS7 signature of the identity document,
              or V(null).
            type: str
            returned: success
          instance_identity_signature:
            description: SHA256 signature of the identity document, or V(null).
            type: str
            returned: success
          instance_life_cycle:
            description: The purchasing option, V(spot), V(on-demand), V(scheduled)
              or V(capacity-block).
            type: str
            returned: success
            sample: on-demand
          instance_profile_arn:
            description: The ARN of the instance profile, from C(iam_info),
              or V(null).
            type: str
            returned: success
            sample: arn:aws:iam::123456789012:instance-profile/web-instance-profile
          instance_profile_id:
            description: The ID of the instance profile, from C(iam_info),
              or V(null).
            type: str
            returned: success
            sample: AIPASIMULATORPROFILE1
          instance_profile_name:
            description: The instance profile name, the last part of its
              ARN, or V(null).
            type: str
            returned: success
            sample: web-instance-profile
          instance_type:
            description: The instance type.
            type: str
            returned: success
            sample: m5.large
          ipv6:
            description: The IPv6 address of the primary interface, or V(null).
            type: str
            returned: success
            sample: 2a05:d014:f18:3d00:8c5e:2f9a:6b1c:41d7
          kernel_id:
            description: The kernel ID, or V(null) if it has none.
            type: str
            returned: success
          mac:
            description: The MAC address of the primary interface.
            type: str
            returned: success
            sample: 02:1a:2b:3c:4d:5e
          network_interfaces:
            description: Every attached interface, by MAC address; the primary
              one is C(network_interfaces[ansible_facts.ec2.mac]).
            type: dict
            returned: success
            contains:
              device_number:
                description: The device number, e.g. 0.
                type: int
                returned: success
                sample: 0
              interface_id:
                description: The ENI ID.
                type: str
                returned: success
                sample: eni-0a1b2c3d4e5f60001
              ipv4_associations:
                description: Public IP -> the private IPs it maps to, for
                  each public IP of the interface.
                type: dict
                returned: success
                sample:
                  203.0.113.25:
                  - 10.0.1.23
              ipv4_prefix:
                description: IPv4 prefixes delegated to the interface.
                type: list
                returned: success
                elements: str
                sample:
                - 10.0.1.48/28
              ipv6_prefix:
                description: IPv6 prefixes delegated to the interface.
                type: list
                returned: success
                elements: str
                sample:
                - 2a05:d014:f18:3d00:a5b3::/80
              ipv6s:
                description: The interface's IPv6 addresses; [] if none.
                type: list
                returned: success
                elements: str
                sample:
                - 2a05:d014:f18:3d00:8c5e:2f9a:6b1c:41d7
              mac:
                description: The MAC address of the interface.
                type: str
                returned: success
                sample: 02:1a:2b:3c:4d:5e
              network_card_index:
                description: The network card index, or V(null).
                type: int
                returned: success
                sample: 0
              owner_id:
                description: The AWS account ID of the interface's owner.
                type: str
                returned: success
                sample: '123456789012'
              private_hostname:
                description: The interface's private hostname.
                type: str
                returned: success
                sample: ip-10-0-1-23.eu-central-1.compute.internal
              private_ipv4s:
                description: The interface's private IPv4 addresses.
                type: list
                returned: success
                elements: str
                sample:
                - 10.0.1.23
                - 10.0.1.24
              public_hostname:
                description: The interface's public DNS name, or V(null).
                type: str
                returned: success
                sample: ec2-203-0-113-25.eu-central-1.compute.amazonaws.com
              public_ipv4s:
                description: The public (Elastic) IPv4 addresses; [] if
                  none.
                type: list
                returned: success
                elements: str
                sample:
                - 203.0.113.25
              security_group_ids:
                description: IDs of the interface's security groups.
                type: list
                returned: success
                elements: str
                sample:
                - sg-0a1b2c3d4e5f60001
                - sg-0a1b2c3d4e5f60002
              security_groups:
                description: Names of the interface's security groups.
                type: list
                returned: success
                elements: str
                sample:
                - web-sg
                - ssh-from-bastion
              subnet_id:
                description: The ID of the interface's subnet.
                type: str
                returned: success
                sample: subnet-0a1b2c3d4e5f60001
              subnet_ipv4_cidr_block:
                description: The subnet's IPv4 CIDR block, or V(null).
                type: str
                returned: success
                sample: 10.0.1.0/24
              subnet_ipv6_cidr_blocks:
                description: The subnet's IPv6 CIDR blocks; [] if none.
                type: list
                returned: success
                elements: str
                sample:
                - 2a05:d014:f18:3d00::/64
              vpc_id:
                description: The ID of the interface's VPC.
                type: str
                returned: success
                sample: vpc-0a1b2c3d4e5f60001
              vpc_ipv4_cidr_block:
                description: The VPC's primary IPv4 CIDR block, or V(null).
                type: str
                returned: success
                sample: 10.0.0.0/16
              vpc_ipv4_cidr_blocks:
                description: The VPC's IPv4 CIDR blocks; [] if none.
                type: list
                returned: success
                elements: str
                sample:
                - 10.0.0.0/16
              vpc_ipv6_cidr_blocks:
                description: The VPC's IPv6 CIDR blocks; [] if none.
                type: list
                returned: success
                elements: str
                sample:
                - 2a05:d014:f18:3d00::/56
          partition:
            description: The AWS partition, such as 'aws', 'aws-us-gov' or 'aws-cn'.
            type: str
            returned: success
            sample: aws
          placement_group_name:
            description: The placement group, or V(null).
            type: str
            returned: success
            sample: web-partition-pg
          placement_host_id:
            description: The Dedicated Host ID, or V(null).
            type: str
            returned: success
            sample: h-0a1b2c3d4e5f60001
          placement_partition_number:
            description: The partition number in a partition placement group,
              or V(null).
            type: int
            returned: success
            sample: 2
          primary_network_interface:
            description:
              - The primary interface (the one whose MAC is C(mac)), with the same keys as each
                entry of C(network_interfaces), for templates that cannot know the MAC -
                C(ansible_facts.ec2.primary_network_interface.subnet_id).
            type: dict
            returned: success
            sample:
              device_number: 0
              interface_id: eni-0a1b2c3d4e5f60001
              subnet_id: subnet-0a1b2c3d4e5f60001
              vpc_id: vpc-0a1b2c3d4e5f60001
          private_hostname:
            description: The private IPv4 DNS hostname of the instance.
            type: str
            returned: success
            sample: ip-10-0-1-23.eu-central-1.compute.internal
          private_ipv4:
            description: The private IPv4 of the instance.
            type: str
            returned: success
            sample: 10.0.1.23
          product_codes:
            description: Marketplace product codes; [] if none.
            type: list
            returned: success
            elements: str
            sample:
            - 3f8t6t8fp5m9xx18yzwriozxi
          public_hostname:
            description: The public DNS hostname, or V(null) if the instance
              is not public.
            type: str
            returned: success
            sample: ec2-203-0-113-25.eu-central-1.compute.amazonaws.com
          public_ipv4:
            description: The public IPv4 address, or V(null) if the instance
              is not public.
            type: str
            returned: success
            sample: 203.0.113.25
          public_keys:
            description: Key name -> C(index) and C(openssh_key), from the
              C(INDEX=NAME) lines IMDS lists; {} if none.
            type: dict
            returned: success
            sample:
              simulator-key:
                index: 0
                openssh_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... simulator-key
          ramdisk_id:
            description: The RAM disk ID, or V(null).
            type: str
            returned: success
          region:
            description: The region the instance runs in.
            type: str
            returned: success
            sample: eu-central-1
          reservation_id:
            description: The ID of the reservation.
            type: str
            returned: success
            sample: r-0fedcba9876543210
          security_groups:
            description: Names of the instance's security groups.
            type: list
            returned: success
            elements: str
            sample:
            - web-sg
            - ssh-from-bastion
          spot_instance_action:
            description: The pending spot interruption (C(action) stop,
              terminate or hibernate; C(time) ISO 8601 UTC), or V(null).
            type: dict
            returned: success
          spot_termination_time:
            description: When a spot instance will be terminated (ISO 8601),
              or V(null).
            type: str
            returned: success
          system:
            description: The virtualization system, V(nitro) or V(xen),
              or V(null).
            type: str
            returned: success
            sample: nitro
          tags:
            description: The instance tags, by key exactly as IMDS has them;
              V(null) when tags are not enabled in instance metadata (C(aws
              ec2 modify-instance-metadata-options --instance-metadata-tags
              enabled)). Keys may hold C(:) and C(.), so read them with
              brackets, C(ansible_facts.ec2.tags['aws:autoscaling:groupName']).
            type: dict
            returned: success
            sample:
              Name: web-01
              Role: web
              aws:autoscaling:groupName: web-asg
              cost.center: cc-4711
              env-tier: frontend
              env_tier: backend
          user_data:
            description: The user data, V(null) without any. C(encoding)
              is V(text) (UTF-8, gunzipped first when it was gzip-compressed,
              then C(compression) is V(gzip)) or V(base64) (the raw bytes,
              base64-encoded).
            type: dict
            returned: when O(include_user_data=true)
            sample:
              encoding: text
              compression: null
              content: "#cloud-config\n"
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
msg:
  description: Why C(ansible_facts.ec2) is V(null), with O(off_ec2=ignore) off EC2.
  type: str
  returned: when no IMDS answered and O(off_ec2=ignore)
  sample: >-
    no EC2 instance metadata here: cannot reach IMDS at 169.254.169.254:80: Connection refused
    (not on EC2, or the metadata endpoint is wrong or turned off)
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.imds.ec2.plugins.module_utils.ansible_face import (  # noqa: E402
    FACT,
    NotOnEC2,
    failure_message,
    gather,
)
from ansible_collections.imds.ec2.plugins.module_utils.errors import IMDSError  # noqa: E402
from ansible_collections.imds.ec2.plugins.module_utils.legacy_facts import legacy_facts  # noqa: E402

ARGUMENT_SPEC = dict(
    endpoint=dict(type="str"),
    endpoint_mode=dict(type="str", choices=["IPv4", "IPv6"]),
    timeout=dict(type="float"),
    attempts=dict(type="int"),
    allow_imdsv1=dict(type="bool"),
    token_ttl=dict(type="int", default=21600, aliases=["metadata_token_ttl_seconds"], no_log=False),
    include_secrets=dict(type="bool", default=False, no_log=False),
    include_user_data=dict(type="bool", default=False),
    legacy_facts=dict(type="bool", default=False),
    off_ec2=dict(type="str", default="fail", choices=["fail", "ignore"]),
)


def gather_facts(params):
    """The facts for ``params``; raises ``IMDSError`` when the metadata cannot be read.

    With ``off_ec2=ignore`` a host where no IMDS answers raises ``NotOnEC2``.
    """
    bodies = {} if params["legacy_facts"] else None
    instance = gather(
        params,
        include_secrets=params["include_secrets"],
        include_user_data=params["include_user_data"],
        raw=bodies,
        probe_first=params["off_ec2"] == "ignore",
    )
    facts = {FACT: instance}
    if bodies is not None:
        facts.update(
            legacy_facts(bodies, instance, params["include_secrets"], params["include_user_data"])
        )
    return facts


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        facts = gather_facts(module.params)
    except NotOnEC2 as absent:
        message = "no EC2 instance metadata here: {}".format(absent.reason)
        if absent.turned_off:
            module.warn(message)
        module.exit_json(changed=False, msg=message, ansible_facts={FACT: None})
    except IMDSError as exc:
        module.fail_json(msg=failure_message(exc))
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
