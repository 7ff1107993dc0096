"""A cached IMDSv2 client for EC2 instance metadata.

``from ec2_metadata_core import ec2_metadata`` gives the same API as the
ec2-metadata library. ``ec2_metadata_core.snapshot.snapshot()`` gathers the
whole instance into a plain dict (what the CLI, Ansible facts and Salt grains
hand out); ``ec2_metadata_core.flat.flatten()`` makes it one level deep. Both
load on use: Ansible and Salt start a Python process for every run.
"""

from __future__ import annotations

# Not even ``typing`` at import: from its first line, the CLI's entry point
# (``__main__``) handles Ctrl-C, and this package is imported before it.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Dict, List

    from .client import IMDSClient
    from .config import Settings
    from .documents import (
        IamInfoDict,
        IamSecurityCredentialsDict,
        InstanceIdentityDocumentDict,
        SpotInstanceAction,
    )
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
    from .model import EC2Metadata, InstanceTags, NetworkInterface, PublicKey, ec2_metadata

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

# name -> the module that defines it. Everything loads on first use: importing
# the package stays cheap for processes that start often (Ansible, Salt, the
# CLI, whose Ctrl-C handling starts only once its entry point runs).
_HOMES: Dict[str, str] = {
    "IMDSClient": "client",
    "Settings": "config",
    **dict.fromkeys(
        (
            "ConfigError",
            "IdentityVerificationError",
            "IMDSError",
            "IMDSHTTPError",
            "IMDSTimeoutError",
            "IMDSUnavailableError",
            "LimitError",
            "MalformedResponseError",
            "MetadataDisabledError",
            "PathNotFoundError",
            "TagsNotEnabledError",
            "TokenError",
            "TokenTimeoutError",
        ),
        "errors",
    ),
    **dict.fromkeys(
        (
            "IamInfoDict",
            "IamSecurityCredentialsDict",
            "InstanceIdentityDocumentDict",
            "SpotInstanceAction",
        ),
        "documents",
    ),
    # ec2_metadata: the shared instance, made with its class.
    **dict.fromkeys(
        ("EC2Metadata", "InstanceTags", "NetworkInterface", "PublicKey", "ec2_metadata"),
        "model",
    ),
}


def __getattr__(name: str) -> Any:
    from importlib import import_module

    home = _HOMES.get(name)
    if home is None:
        raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
    value = getattr(import_module("{}.{}".format(__name__, home)), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
