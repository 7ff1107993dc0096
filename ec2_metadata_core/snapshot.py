"""The whole instance as one plain, JSON-safe dict: what every face hands out.

Keys are ``EC2Metadata`` attribute names (``NetworkInterface`` names inside
``network_interfaces``), so the library, the CLI, Ansible facts and Salt grains
all speak one vocabulary. Values are JSON types only: ``None`` for absent,
ISO 8601 strings for times.

The gather is the model read through a prefetch memo: every path the model
will read is fetched first, concurrently, in as few dependent rounds as the
tree allows (token; leaves and listings; per-interface and per-tag values;
IPv4 associations). Reading the model then costs no round trip; a path the
plan missed is still fetched on demand, so the plan is only a speed-up.
"""

from __future__ import annotations

import base64
import gzip
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union
from urllib.parse import quote

from . import parse
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
Outcome = Union[Optional[bytes], IMDSError]

# Values that are credentials: only in a snapshot that asks for them.
SECRET_KEYS = frozenset(("iam_security_credentials", "identity_credentials_ec2"))
USER_DATA_KEY = "user_data"
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


class _Memo:
    """Bodies fetched ahead of reading; misses fall through to the client."""

    def __init__(self, client: IMDSClient, pool: Executor) -> None:
        self._client = client
        self._pool = pool
        self._outcomes: Dict[str, Outcome] = {}
        self.misses: List[str] = []

    def _fetch(self, path: str) -> Outcome:
        try:
            return self._client.get(path)
        except IMDSError as exc:
            return exc

    def prefetch(self, paths: Iterable[str]) -> None:
        wanted = [p for p in dict.fromkeys(paths) if p not in self._outcomes]
        for path, outcome in zip(wanted, self._pool.map(self._fetch, wanted)):
            self._outcomes[path] = outcome

    def bodies(self) -> Dict[str, Optional[bytes]]:
        """Every path read successfully, with its body (None for 404)."""
        return {p: o for p, o in self._outcomes.items() if not isinstance(o, IMDSError)}

    def read(self, path: str) -> Optional[bytes]:
        """Called on the gathering thread only; prefetch fills in between reads."""
        if path in self._outcomes:
            outcome = self._outcomes[path]
        else:
            self.misses.append(path)
            outcome = self._outcomes[path] = self._fetch(path)
        if isinstance(outcome, IMDSError):
            raise outcome
        return outcome


def _quiet(fn: Callable[[], Any], default: Any) -> Any:
    """``fn()`` for planning only: an error here resurfaces when the value is read."""
    try:
        return fn()
    except IMDSError:
        return default


def _plan_first(keys: Sequence[str]) -> List[str]:
    paths = [item for name, item in leaves(EC2Metadata) if name in keys]
    if "network_interfaces" in keys:
        paths.append("meta-data/network/interfaces/macs/")
    if "tags" in keys:
        paths.append(InstanceTags.LISTING)
    if "public_keys" in keys:
        paths.append("meta-data/public-keys/")
    if "block_device_mapping" in keys:
        paths.append("meta-data/block-device-mapping/")
    if "iam_security_credentials" in keys or "iam_role_names" in keys:
        paths.append("meta-data/iam/security-credentials/")
    if {"region", "account_id"} & set(keys):
        paths.append("dynamic/instance-identity/document")
    if {"instance_profile_arn", "instance_profile_id", "instance_profile_name"} & set(keys):
        paths.append("meta-data/iam/info")
    return paths


def _plan_second(view: EC2Metadata, keys: Sequence[str]) -> List[str]:
    paths: List[str] = []
    if "network_interfaces" in keys:
        for nic in _quiet(lambda: view.network_interfaces, {}).values():
            paths.extend(nic._path(item) for _, item in leaves(NetworkInterface))
    if "tags" in keys:
        paths.extend(InstanceTags.path(name) for name in _quiet(lambda: view.tags, {}))
    if "public_keys" in keys:
        for key in _quiet(lambda: view.public_keys, {}).values():
            paths.extend(key._path(item) for _, item in leaves(PublicKey))
    if "block_device_mapping" in keys:
        names = _quiet(lambda: view.block_device_mapping_names, [])
        paths.extend("meta-data/block-device-mapping/" + quote(n, safe="") for n in names)
    if "iam_security_credentials" in keys:
        roles = _quiet(lambda: view.iam_role_names, [])
        if roles:
            paths.append("meta-data/iam/security-credentials/" + quote(roles[0], safe=""))
    return paths


def _plan_third(view: EC2Metadata, keys: Sequence[str]) -> List[str]:
    paths: List[str] = []
    if "network_interfaces" in keys:
        for nic in _quiet(lambda: view.network_interfaces, {}).values():
            public_ips: List[str] = _quiet(lambda: nic.public_ipv4s, [])  # noqa: B023
            paths.extend(nic._path(NetworkInterface.association_item(ip)) for ip in public_ips)
    return paths


def _known_categories() -> Set[str]:
    """First path segments under meta-data/ that the model reads."""
    every = _plan_first(snapshot_keys(True, True))
    return {p.split("/")[1] for p in every if p.startswith("meta-data/") and p.count("/") >= 1}


def _walk_unknown(memo: _Memo, entries: List[str], base: str) -> Dict[str, JSON]:
    """Read categories the model does not know yet, level by level."""
    tree: Dict[str, JSON] = {}
    pending = [(tree, base, entry) for entry in entries]
    while pending:
        memo.prefetch(base_path + entry for _, base_path, entry in pending)
        next_round: List[Tuple[Dict[str, JSON], str, str]] = []
        for node, base_path, entry in pending:
            path = base_path + entry
            key = entry.rstrip("/")
            if entry.endswith("/"):
                child: Dict[str, JSON] = {}
                node[key] = child
                next_round.extend((child, path, sub) for sub in parse.lines(path, memo.read(path)))
            else:
                node[key] = parse.optional_text(path, memo.read(path))
        pending = next_round
    return tree


def to_json(value: Any) -> JSON:
    """A model value as JSON types only."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, SpotInstanceAction):
        return {"action": value.action, "time": value.time.isoformat().replace("+00:00", "Z")}
    if isinstance(value, NetworkInterface):
        data = {name: to_json(getattr(value, name)) for name, _ in leaves(NetworkInterface)}
        data["mac"] = value.mac
        data["ipv4_associations"] = to_json(value.ipv4_associations)
        return dict(sorted(data.items()))
    if isinstance(value, PublicKey):
        return {"index": value.index, "openssh_key": value.openssh_key}
    if isinstance(value, bytes):
        return user_data_json(value)
    if isinstance(value, (dict, InstanceTags)):
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
        except (OSError, EOFError):
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
    view = EC2Metadata(client=client)
    with ThreadPoolExecutor(client.settings.max_concurrency, thread_name_prefix="imds") as pool:
        memo = _Memo(client, pool)
        view._reader = memo.read
        client.prime_token()
        first = _plan_first(wanted)
        discover = keys is None
        if discover:
            first.append("meta-data/")
        memo.prefetch(first)
        memo.prefetch(_plan_second(view, wanted))
        memo.prefetch(_plan_third(view, wanted))
        result = {name: _value(view, name) for name in wanted}
        if discover:
            known = _known_categories()
            extra = [
                e
                for e in parse.lines("meta-data/", memo.read("meta-data/"))
                if e.rstrip("/") not in known
            ]
            for name, value in _walk_unknown(memo, extra, "meta-data/").items():
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
