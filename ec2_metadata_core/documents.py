"""The JSON documents IMDS serves: their shapes, as ec2-metadata types them, and their parsers.

The types (``IamInfoDict``, ``InstanceIdentityDocumentDict``, ...) are the
ec2-metadata library's names for the values ``EC2Metadata`` returns; the
parsers check what the model relies on, so an odd document is a
``MalformedResponseError`` naming its path, never a ``KeyError`` later.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, List, Literal, Mapping, Optional, TypedDict

from . import parse
from .errors import MalformedResponseError


class IamInfoDict(TypedDict):
    InstanceProfileArn: str
    InstanceProfileId: str
    LastUpdated: str


class IamSecurityCredentialsDict(TypedDict):
    LastUpdated: str
    Type: str
    AccessKeyId: str
    SecretAccessKey: str
    Token: str
    Expiration: str


class InstanceIdentityDocumentDict(TypedDict):
    accountId: str
    architecture: Literal["i386", "x86_64", "arm64"]
    availabilityZone: str
    billingProducts: Optional[List[str]]
    marketplaceProductCodes: Optional[List[str]]
    imageId: str
    instanceId: str
    instanceType: str
    kernelId: Optional[str]
    pendingTime: str
    privateIp: str
    ramdiskId: Optional[str]
    region: str
    version: str


class SpotInstanceAction:
    """An action about to happen to a spot instance."""

    def __init__(
        self, action: Literal["hibernate", "stop", "terminate"], time: dt.datetime
    ) -> None:
        self.action = action
        self.time = time

    def __repr__(self) -> str:
        return "SpotInstanceAction(action={!r}, time={!r})".format(self.action, self.time)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpotInstanceAction) and (self.action, self.time) == (
            other.action,
            other.time,
        )

    __hash__ = None  # type: ignore[assignment]


def spot_action(path: str, body: Optional[bytes]) -> Optional[SpotInstanceAction]:
    """``spot/instance-action``: the action and its time, or ``None`` (404: none planned)."""
    document = parse.optional_json_object(path, body)
    if document is None:
        return None
    action = document.get("action")
    if action not in ("hibernate", "stop", "terminate"):
        raise MalformedResponseError(path, "spot action")
    return SpotInstanceAction(action, parse.timestamp(path, document.get("time")))


def string_field(path: str, document: Mapping[str, Any], key: str) -> str:
    """A string the document must hold: a missing or odd one is malformed, not a KeyError."""
    value = document.get(key)
    if not isinstance(value, str):
        raise MalformedResponseError(path, "JSON object with a string {!r}".format(key))
    return value


def iam_info(path: str, body: Optional[bytes]) -> Optional[IamInfoDict]:
    """``iam/info``, or ``None`` (404: no role attached)."""
    return parse.optional_json_object(path, body)  # type: ignore[return-value]


def identity_document(path: str, body: Optional[bytes]) -> InstanceIdentityDocumentDict:
    """The instance identity document: a JSON object every instance serves."""
    document = parse.json_document(path, body)
    if not isinstance(document, dict):
        raise MalformedResponseError(path, "JSON object")
    return document  # type: ignore[return-value]
