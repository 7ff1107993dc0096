"""The whole instance as one plain, JSON-safe dict: what every face hands out.

Keys are ``EC2Metadata`` attribute names (``NetworkInterface`` names inside
``network_interfaces``), so the library, the CLI, Ansible facts and Salt grains
all speak one vocabulary. Values are JSON types only: ``None`` for absent,
ISO 8601 strings for times.

The gather is the model read through a memo filled in one pipelined pass
(``IMDSClient.fetch``): every path the model will read is requested as soon
as it is known, listings first and each listing's entries the moment it
arrives, so the longest chain is token, MAC list, per-interface values, IPv4
association. Reading the model then costs no round trip; a path the plan
missed is still fetched on demand, so the plan is only a speed-up.
"""

from __future__ import annotations

import base64
import functools
import gzip
import zlib
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from . import parse, sensitive
from .client import IMDSClient
from .errors import IMDSError, PathNotFoundError, TagsNotEnabledError
from .lazy import Leaf, UncachedLeaf, cached_property, leaves
from .model import (
    EC2Metadata,
    InstanceTags,
    NetworkInterface,
    PublicKey,
    SpotInstanceAction,
)

JSON = Any
# Defined in sensitive.py (one definition for every face); cli.py reads them here.
SECRET_KEYS = sensitive.SECRET_KEYS
USER_DATA_KEY = sensitive.USER_DATA_KEY
Outcome = Union[Optional[bytes], IMDSError]

# Model attributes that are plumbing, not metadata.
_NOT_METADATA = frozenset(
    (
        "client",
        "service_url",
        "metadata_url",
        "dynamic_url",
        "userdata_url",
        "block_device_mapping_names",
    )
)
# Prefix for categories the model does not know, should one clash with a key.
_UNKNOWN_PREFIX = "meta_data_"


def snapshot_keys(include_secrets: bool = False, include_user_data: bool = False) -> List[str]:
    """Top-level keys a snapshot has, in sorted order (unknown categories aside)."""
    names = []
    for name in dir(EC2Metadata):
        if name.startswith("_") or name in _NOT_METADATA:
            continue
        if not isinstance(
            getattr(EC2Metadata, name), (Leaf, UncachedLeaf, cached_property, property)
        ):
            continue
        if name in SECRET_KEYS and not include_secrets:
            continue
        if name == USER_DATA_KEY and not include_user_data:
            continue
        names.append(name)
    return sorted(names)


class _NotYet(Exception):
    """Internal: planning read a path whose body has not arrived."""


class _Planner:
    """Decides, as each body arrives, which paths the snapshot will read next.

    Planning reads the model itself (the same ``view`` the values come from),
    so the paths come from the one place that defines them. A planning read
    that fails only stops planning; the error resurfaces when the value is read.
    """

    def __init__(self, view: EC2Metadata, keys: Sequence[str], discover: bool) -> None:
        self.view = view
        self.keys = set(keys)
        self.discover = discover
        self.arrived: Dict[str, Optional[bytes]] = {}
        self.unknown: List[str] = []
        self._first: List[str] = []
        self._steps: Dict[str, Callable[[], Iterable[str]]] = {}
        view._reader = self._read

    def _read(self, path: str) -> Optional[bytes]:
        if path not in self.arrived:
            raise _NotYet(path)
        return self.arrived[path]

    def first(self) -> List[str]:
        keys, view = self.keys, self.view
        paths = [item for name, item in leaves(EC2Metadata) if name in keys]
        steps = self._steps
        if keys & {"network_interfaces", "primary_network_interface"}:
            steps["meta-data/network/interfaces/macs/"] = self._interfaces
        if "tags" in keys:
            steps[InstanceTags.LISTING] = lambda: [InstanceTags.path(n) for n in view.tags]
        if "public_keys" in keys:
            steps["meta-data/public-keys/"] = lambda: [
                key._path(item)
                for key in view.public_keys.values()
                for item in dict(leaves(PublicKey)).values()
            ]
        if "block_device_mapping" in keys:
            steps["meta-data/block-device-mapping/"] = lambda: [
                view.block_device_path(name) for name in view.block_device_mapping_names
            ]
        if "iam_security_credentials" in keys:
            steps["meta-data/iam/security-credentials/"] = lambda: [
                view.role_credentials_path(role) for role in view.iam_role_names[:1]
            ]
        if self.discover:
            steps["meta-data/"] = self._discover
        derived = {
            "dynamic/instance-identity/document": {"region", "account_id"},
            "meta-data/iam/info": {
                "instance_profile_arn",
                "instance_profile_id",
                "instance_profile_name",
            },
            "meta-data/iam/security-credentials/": {"iam_security_credentials"},
            "meta-data/mac": {"primary_network_interface"},
        }
        paths.extend(path for path, names in derived.items() if names & keys)
        # Listings first: their entries are the longest chain of the gather.
        paths = list(steps) + paths
        self._first = paths
        return paths

    def _interfaces(self) -> List[str]:
        paths: List[str] = []
        # public-ipv4s first: the IPv4 associations wait on it.
        items = sorted(dict(leaves(NetworkInterface)).values(), key=lambda i: i != "public-ipv4s")
        for nic in self.view.network_interfaces.values():
            paths.extend(nic._path(item) for item in items)
            self._steps[nic._path("public-ipv4s")] = functools.partial(self._associations, nic)
        return paths

    @staticmethod
    def _associations(nic: NetworkInterface) -> List[str]:
        return [nic._path(NetworkInterface.association_item(ip)) for ip in nic.public_ipv4s]

    def _discover(self) -> List[str]:
        # Discovery runs for full snapshots only, whose first paths touch every
        # category the model knows.
        known = {path.split("/")[1] for path in self._first if path.startswith("meta-data/")}
        self.unknown = [
            entry
            for entry in parse.lines("meta-data/", self.arrived["meta-data/"])
            if entry.rstrip("/") not in known
        ]
        return self._unknown_paths("meta-data/", self.unknown)

    def _unknown_paths(self, base: str, entries: List[str]) -> List[str]:
        paths = []
        for entry in entries:
            path = base + entry
            if entry.endswith("/"):
                self._steps[path] = functools.partial(self._unknown_listing, path)
            paths.append(path)
        return paths

    def _unknown_listing(self, path: str) -> List[str]:
        return self._unknown_paths(path, parse.lines(path, self.arrived[path]))

    def follow(self, path: str, body: Optional[bytes]) -> List[str]:
        """Paths to fetch now that ``path`` answered ``body`` (None for 404)."""
        self.arrived[path] = body
        step = self._steps.pop(path, None)
        if step is None:
            return []
        try:
            return list(step())
        except (IMDSError, _NotYet):
            return []


class _Memo:
    """The gathered bodies; a path the plan missed is fetched on demand."""

    def __init__(self, client: IMDSClient, outcomes: Dict[str, Outcome]) -> None:
        self._client = client
        self._outcomes = outcomes
        self.misses: List[str] = []

    def bodies(self) -> Dict[str, Optional[bytes]]:
        """Every path read successfully, with its body (None for 404)."""
        return {p: o for p, o in self._outcomes.items() if not isinstance(o, IMDSError)}

    def read(self, path: str) -> Optional[bytes]:
        if path in self._outcomes:
            outcome = self._outcomes[path]
        else:
            self.misses.append(path)
            try:
                outcome = self._client.get(path)
            except IMDSError as exc:
                outcome = exc
            self._outcomes[path] = outcome
        if isinstance(outcome, IMDSError):
            raise outcome
        return outcome


def _unknown_tree(memo: _Memo, base: str, entries: List[str]) -> Dict[str, JSON]:
    tree: Dict[str, JSON] = {}
    for entry in entries:
        path = base + entry
        if entry.endswith("/"):
            tree[entry.rstrip("/")] = _unknown_tree(memo, path, parse.lines(path, memo.read(path)))
        else:
            tree[entry] = parse.optional_text(path, memo.read(path))
    return tree


def to_json(value: Any) -> JSON:
    """A model value as JSON types only."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, SpotInstanceAction):
        return {"action": value.action, "time": parse.iso_utc(value.time)}
    if isinstance(value, NetworkInterface):
        data = {name: to_json(getattr(value, name)) for name in dict(leaves(NetworkInterface))}
        data["mac"] = value.mac
        data["ipv4_associations"] = to_json(value.ipv4_associations)
        return dict(sorted(data.items()))
    if isinstance(value, PublicKey):
        return {"index": value.index, "openssh_key": value.openssh_key}
    if isinstance(value, bytes):
        return user_data_json(value)
    if isinstance(value, InstanceTags):
        return value.present()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    raise TypeError("no JSON form for {}".format(type(value).__name__))


def user_data_json(raw: bytes) -> Dict[str, Any]:
    """User data as text when it is UTF-8 (gunzipped first if gzip'd), else base64."""
    compression = None
    body = raw
    if raw[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(raw)
            compression = "gzip"
        except (OSError, EOFError, zlib.error):  # not gzip after all: keep the bytes
            body = raw
    try:
        return {"encoding": "text", "compression": compression, "content": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            "encoding": "base64",
            "compression": None,
            "content": base64.b64encode(raw).decode("ascii"),
        }


def _value(view: EC2Metadata, name: str) -> JSON:
    try:
        return to_json(getattr(view, name))
    except (PathNotFoundError, TagsNotEnabledError):
        return None


def snapshot(
    metadata: Optional[EC2Metadata] = None,
    *,
    include_secrets: bool = False,
    include_user_data: bool = False,
    keys: Optional[Iterable[str]] = None,
    stats: Optional[Dict[str, Any]] = None,
    raw: Optional[Dict[str, Optional[bytes]]] = None,
) -> Dict[str, JSON]:
    """Gather the instance's metadata into a plain dict (see the module docstring).

    ``include_secrets`` adds IAM and identity credentials, ``include_user_data``
    the user data; both are off by default because snapshots travel (facts,
    grains, logs). ``keys`` limits the gather to those top-level keys. Raises an
    ``IMDSError`` if any value could not be read: a failed path never passes
    for an absent one. ``stats``, if given, receives ``misses``: paths the
    prefetch plan did not cover. ``raw``, if given, receives every body read
    by path under ``/latest/`` (``None`` for 404), for faces that must name
    values by their IMDS path.
    """
    source = _default() if metadata is None else metadata
    client = source.client
    available = snapshot_keys(include_secrets, include_user_data)
    if keys is None:
        wanted = available
    else:
        wanted = list(dict.fromkeys(keys))
        unknown = [k for k in wanted if k not in available]
        if unknown:
            raise KeyError(unknown[0])
    discover = keys is None
    view = EC2Metadata(client=client)
    planner = _Planner(view, wanted, discover)
    memo = _Memo(client, client.fetch(planner.first(), follow=planner.follow))
    view._reader = memo.read
    result = {name: _value(view, name) for name in wanted}
    if discover:
        # The categories listing feeds only the plan: a failure there would
        # otherwise pass for "no other categories".
        parse.lines("meta-data/", memo.read("meta-data/"))
        for name, value in _unknown_tree(memo, "meta-data/", planner.unknown).items():
            key = name.replace("-", "_").lower()
            result[_UNKNOWN_PREFIX + key if key in result else key] = value
    if stats is not None:
        stats["misses"] = list(memo.misses)
    if raw is not None:
        raw.update(memo.bodies())
    return dict(sorted(result.items()))


def _default() -> EC2Metadata:
    from . import ec2_metadata

    return ec2_metadata
