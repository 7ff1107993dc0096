"""Is there an IMDS here? The one answer the Salt grains and the Ansible faces share.

Only the token request decides: refused, unreachable or silent (a token
timeout), or answered "no IMDSv2 here" (403/404/405), means not on EC2 (or
IMDS turned off, 403). Anything after a token was granted (a timeout, a 5xx
on a metadata path) is a failure of an IMDS that exists, for the gather to
report; "absent" and "failed" stay apart.
"""

from __future__ import annotations

from typing import Optional

from .client import IMDSClient
from .errors import IMDSError, IMDSUnavailableError, MetadataDisabledError, TokenError
from .tokens import NO_V2_STATUSES

# The token request's answer on an instance whose IMDS is turned off.
TURNED_OFF_STATUS = 403


def probe(client: IMDSClient) -> Optional[IMDSError]:
    """``None`` if an IMDS answers ``client``'s token request; else the error saying why not.

    The token it gets stays with ``client`` for the reads that follow. An
    IMDS that answers the token request in any other way (a 500, a malformed
    token) counts as present: the gather, with its retries, reports it.
    """
    try:
        client.prime_token()
    except (IMDSUnavailableError, MetadataDisabledError) as exc:
        return exc
    except TokenError as exc:
        if exc.status in NO_V2_STATUSES:
            return exc
    return None


def is_turned_off(reason: IMDSError) -> bool:
    """Whether ``probe``'s reason says an instance's IMDS is turned off (an EC2 instance)."""
    return isinstance(reason, TokenError) and reason.status == TURNED_OFF_STATUS
