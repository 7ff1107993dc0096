# Copyright: ec2-metadata-core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt
# or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the module, its action and the inventory plugin share: one gather, one failure message."""

from __future__ import annotations

from ansible_collections.imds.ec2.plugins.module_utils.config import settings_in
from ansible_collections.imds.ec2.plugins.module_utils.model import EC2Metadata
from ansible_collections.imds.ec2.plugins.module_utils.presence import is_turned_off, probe
from ansible_collections.imds.ec2.plugins.module_utils.snapshot import snapshot

# The name of the fact and of the inventory plugin's host variable. Ansible
# strips ``ansible_`` inside ``ansible_facts``, so playbooks read it as
# ``ansible_facts.ec2`` or, with facts injected as variables (the default),
# ``ansible_ec2``; a user's own variable ``ec2`` is left alone.
FACT = "ansible_ec2"


class NotOnEC2(Exception):
    """No IMDS answered the token request: ``reason`` (an IMDSError) says why."""

    def __init__(self, reason):
        super().__init__(str(reason))
        self.reason = reason

    @property
    def turned_off(self):
        """An EC2 instance whose IMDS is turned off, rather than a machine off EC2."""
        return is_turned_off(self.reason)


def gather(
    options,
    include_secrets=False,
    include_user_data=False,
    raw=None,
    probe_first=False,
):
    """The snapshot of the instance; settings left None come from the AWS environment.

    ``options`` are the plugin's own (module params, inventory options): the
    ones named as core settings (``config.OPTIONS``) configure the client, so
    a setting is named in the plugin's option spec and nowhere else here.
    With ``probe_first``, a token request that finds no IMDS raises
    ``NotOnEC2`` instead of an IMDSError; failures after that stay IMDSErrors.
    """
    metadata = EC2Metadata(**settings_in(options))
    try:
        if probe_first:
            reason = probe(metadata.client)
            if reason is not None:
                raise NotOnEC2(reason)
        return snapshot(
            metadata, include_secrets=include_secrets, include_user_data=include_user_data, raw=raw
        )
    finally:
        metadata.clear_all()


def failure_message(exc):
    """One line for a failed gather (``exc`` is an IMDSError, whose message names the cause)."""
    return "cannot read EC2 instance metadata: {}".format(exc)
