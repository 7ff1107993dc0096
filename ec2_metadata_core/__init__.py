"""A cached IMDSv2 client for EC2 instance metadata.

``from ec2_metadata_core import ec2_metadata`` gives the same API as the
ec2-metadata library; ``snapshot()`` gathers the whole instance into a plain
dict for the CLI, Ansible facts and Salt grains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import IMDSClient
from .config import Settings
from .errors import (
    ConfigError,
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    IMDSUnavailableError,
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

if TYPE_CHECKING:  # pragma: no cover
    from .flat import flatten
    from .snapshot import snapshot

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
    "InstanceIdentityDocumentDict",
    "InstanceTags",
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
    "flatten",
    "snapshot",
]

ec2_metadata = EC2Metadata()


def __getattr__(name: str) -> Any:
    # The gather pulls in concurrent.futures, gzip and base64: load it on use,
    # since Ansible and Salt start a Python process for every run.
    if name == "snapshot":
        from .snapshot import snapshot

        return snapshot
    if name == "flatten":
        from .flat import flatten

        return flatten
    raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
