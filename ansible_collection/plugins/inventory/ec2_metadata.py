# Copyright: ec2-metadata-core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt
# or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: ec2_metadata
short_description: The EC2 instance Ansible runs on, as a one-host inventory
version_added: 0.1.0
author:
  - ec2-metadata-core maintainers (!UNKNOWN)
description:
  - For ansible-pull and instances that configure themselves - reads the instance metadata service
    (IMDSv2) of the machine Ansible runs on and makes that instance the one host of the inventory,
    reached with the C(local) connection.
  - The host's variable C(ansible_ec2) holds the whole instance, the same dictionary that
    M(imds.ec2.ec2_metadata_facts) sets as the fact C(ansible_facts.ec2) (C(ansible_ec2) as a
    variable), so C(compose), C(groups) and C(keyed_groups) can place it by tag, availability zone,
    instance type and the like, before any play runs. A variable C(ec2) of your own is left alone.
  - Credentials and user data are never read.
  - Every key and value of C(ansible_ec2) is marked unsafe, so a tag holding C({{ }}) is never
    templated (not by C(compose), C(groups), C(keyed_groups) or C(ansible-inventory), not in a
    play); a value composed from one stays marked. Quoting one for a shell (C(| quote)) or a
    file is still the playbook's job.
  - Group names are always made safe (every character outside letters, digits and C(_) becomes
    C(_)), so an C(az) key group for C(eu-central-1b) is C(az_eu_central_1b).
  - Settings not given here come from the environment Ansible runs in and the shared AWS config
    file, as for the AWS SDKs (E(AWS_EC2_METADATA_SERVICE_ENDPOINT),
    E(AWS_METADATA_SERVICE_TIMEOUT), ...).
  - The configuration file's name must end in C(ec2_metadata.yml), C(ec2_metadata.yaml),
    C(imds_ec2.yml) or C(imds_ec2.yaml).
extends_documentation_fragment:
  - ansible.builtin.constructed
options:
  plugin:
    description: Marks the file as this plugin's configuration.
    type: str
    required: true
    choices: [imds.ec2.ec2_metadata]
  hostname:
    description:
      - The name of the host.
      - V(localhost) is what plays for C(localhost) and C(ansible-pull)'s default C(--limit)
        (the local host names) match, so C(ansible-pull -i instance.imds_ec2.yml local.yml) needs
        no C(--limit).
      - Another name (the instance ID, to keep hosts apart in a shared fact cache) needs
        C(ansible-pull --limit all) or that name as the limit.
      - The host gets C(ansible_connection=local) and, like the implicit localhost, the Python
        running Ansible as C(ansible_python_interpreter); O(compose) can set either otherwise.
    type: str
    default: localhost
  endpoint:
    description:
      - Base URL of the instance metadata service, such as V(http://169.254.169.254).
      - When not set, E(AWS_EC2_METADATA_SERVICE_ENDPOINT) and the shared AWS config decide.
    type: str
  timeout:
    description: Seconds to wait for each answer (default V(1), or E(AWS_METADATA_SERVICE_TIMEOUT)).
    type: float
  attempts:
    description: Tries per request (default V(3), or E(AWS_METADATA_SERVICE_NUM_ATTEMPTS)).
    type: int
  allow_imdsv1:
    description:
      - Fall back to IMDSv1 (no session token) when the token request is refused with 400, 403,
        404 or 405.
      - When not set, only E(AWS_EC2_METADATA_V1_DISABLED=false) or C(ec2_metadata_v1_disabled =
        false) in the shared config allow it; by default the plugin never falls back.
    type: bool
  token_ttl:
    description: Lifetime in seconds asked for the IMDSv2 session token, V(1) to V(21600).
    type: int
    default: 21600
"""

EXAMPLES = r"""
# instance.imds_ec2.yml, kept in the repository ansible-pull checks out, used as
#   ansible-pull -U https://git.example.com/site.git -i instance.imds_ec2.yml local.yml
# or ansible-playbook -i instance.imds_ec2.yml local.yml; the host is localhost.
plugin: imds.ec2.ec2_metadata
keyed_groups:
  # role_web for an instance tagged Role=web
  - key: ansible_ec2.tags.Role
    prefix: role
  # az_eu_central_1b
  - key: ansible_ec2.availability_zone
    prefix: az
  - key: ansible_ec2.tags['aws:autoscaling:groupName']
    prefix: asg
    default_value: none
groups:
  spot: ansible_ec2.instance_life_cycle == 'spot'
compose:
  instance_type: ansible_ec2.instance_type
"""

import sys  # noqa: E402

from ansible.errors import AnsibleParserError  # noqa: E402
from ansible.inventory.group import to_safe_group_name  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable  # noqa: E402
from ansible.utils.unsafe_proxy import wrap_var  # noqa: E402
from ansible_collections.imds.ec2.plugins.module_utils.ansible_face import (  # noqa: E402
    FACT,
    failure_message,
    gather,
)
from ansible_collections.imds.ec2.plugins.module_utils.errors import IMDSError  # noqa: E402

CONFIG_SUFFIXES = tuple(
    stem + extension for stem in ("ec2_metadata", "imds_ec2") for extension in (".yml", ".yaml")
)


class InventoryModule(BaseInventoryPlugin, Constructable):
    """One host, this instance, with its metadata as the variable ``ansible_ec2``."""

    NAME = "imds.ec2.ec2_metadata"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(CONFIG_SUFFIXES)

    def _sanitize_group_name(self, name):
        # AZs, tag values and instance types hold '-' and '.': always make them safe.
        return to_safe_group_name(name, force=True, silent=True)

    def _read_instance(self):
        """The instance's snapshot, every key and value marked unsafe.

        Tags and the rest are written by people who are not root here, and
        whatever answers at the endpoint may not be IMDS: ansible-core before
        2.19 templates a host variable's strings wherever it is used (even in
        ``keyed_groups`` of ``ansible-inventory --graph``) unless they are
        marked; 2.19 templates none it did not load from a trusted file, and
        its ``wrap_var`` keeps it that way.
        """
        try:
            return wrap_var(gather(self.get_options()))
        except IMDSError as exc:
            raise AnsibleParserError(failure_message(exc)) from None

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        instance = self._read_instance()
        host = self.get_option("hostname")
        self.inventory.add_host(host)
        self.inventory.set_variable(host, FACT, instance)
        self.inventory.set_variable(host, "ansible_connection", "local")
        # Like the implicit localhost: modules run with the Python running Ansible.
        self.inventory.set_variable(host, "ansible_python_interpreter", sys.executable)
        strict = self.get_option("strict")
        variables = self.inventory.get_host(host).get_vars()
        self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
        self._add_host_to_keyed_groups(
            self.get_option("keyed_groups"), variables, host, strict=strict
        )
