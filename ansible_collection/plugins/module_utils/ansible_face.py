# Copyright: ec2-metadata-core contributors
# MIT License (see LICENSE in the project repository)
"""What the module and the inventory plugin share: one gather, one failure message."""

from __future__ import annotations

from ansible_collections.imds.ec2.plugins.module_utils.model import EC2Metadata
from ansible_collections.imds.ec2.plugins.module_utils.snapshot import snapshot


def gather(
    endpoint=None,
    timeout=None,
    attempts=None,
    allow_imdsv1=None,
    token_ttl=None,
    include_secrets=False,
    include_user_data=False,
    raw=None,
):
    """The snapshot of the instance; settings left None come from the AWS environment."""
    metadata = EC2Metadata(
        endpoint=endpoint,
        timeout=timeout,
        attempts=attempts,
        allow_imdsv1=allow_imdsv1,
        token_ttl=token_ttl,
    )
    try:
        return snapshot(
            metadata, include_secrets=include_secrets, include_user_data=include_user_data, raw=raw
        )
    finally:
        metadata.clear_all()


def failure_message(exc):
    """One line for a failed gather (``exc`` is an IMDSError, whose message names the cause)."""
    return "cannot read EC2 instance metadata: {}".format(exc)
