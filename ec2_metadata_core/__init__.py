"""A cached IMDSv2 client for EC2 instance metadata.

``from ec2_metadata_core import ec2_metadata`` gives the same API as the
ec2-metadata library. ``ec2_metadata_core.snapshot.snapshot()`` gathers the
whole instance into a plain dict (what the CLI, Ansible facts and Salt grains
hand out); ``ec2_metadata_core.flat.flatten()`` makes it one level deep. Both
load on use: Ansible and Salt start a Python process for every run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    IdentityVerificationError,
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    IMDSUnavailableError,
    LimitError,
    MalformedResponseError,
    MetadataDisabledError,
    PathNotFoundError,
    TagsNotEnabledError,
    TokenError,
    TokenTimeoutError,
)
from .model import (
    EC2Metadata,
    IamInfoDict,
    IamSecurityCredentialsDict,
    InstanceIdentityDocumentDict,
    InstanceTags,
    NetworkInterface,
    PublicKey,
    SpotInstanceAction,
)

__all__ = [
    "ConfigError",
    "EC2Metadata",
    "IMDSClient",
    "IMDSError",
    "IMDSHTTPError",
    "IMDSTimeoutError",
    "IMDSUnavailableError",
    "IamInfoDict",
    "IamSecurityCredentialsDict",
    "IdentityVerificationError",
    "InstanceIdentityDocumentDict",
    "InstanceTags",
    "LimitError",
    "MalformedResponseError",
    "MetadataDisabledError",
    "NetworkInterface",
    "PathNotFoundError",
    "PublicKey",
    "Settings",
    "SpotInstanceAction",
    "TagsNotEnabledError",
    "TokenError",
    "TokenTimeoutError",
    "ec2_metadata",
]

if TYPE_CHECKING:  # pragma: no cover
    from .client import IMDSClient
    from .config import Settings

ec2_metadata = EC2Metadata()


def __getattr__(name: str) -> Any:
    # The client loads on first use (see EC2Metadata.client): importing the
    # package stays cheap for processes that start often (Ansible, Salt).
    if name == "IMDSClient":
        from .client import IMDSClient

        return IMDSClient
    if name == "Settings":
        from .config import Settings

        return Settings
    raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
