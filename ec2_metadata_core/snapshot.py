"""The whole instance as one plain, JSON-safe dict: what every face hands out.

Keys are ``EC2Metadata`` attribute names (``NetworkInterface`` names inside
``network_interfaces``), so the library, the CLI, Ansible facts and Salt grains
all speak one vocabulary. Values are JSON types only: ``None`` for absent,
ISO 8601 strings for times.

The gather is one pipelined pass (``IMDSClient.fetch``) driven by the plan
the model's declarations give (``plan.py``): listings first, each listing's
entries the moment it arrives. The values are then the model read over the
gathered bodies (``EC2Metadata.from_reader``), which costs no round trip; a
path the plan missed is still fetched on demand (and counted in ``stats``),
so the plan is only a speed-up.
"""

from __future__ import annotations

import base64
import sys
import zlib
from typing import Any, Dict, Iterable, List, Optional

from . import parse
from .bounds import MAX_USER_DATA
from .client import Body, IMDSClient
from .documents import SpotInstanceAction
from .errors import IMDSError, TagsNotEnabledError
from .lazy import declared
from .model import CATEGORIES, EC2Metadata, InstanceTags, NetworkInterface, PublicKey, ec2_metadata
from .plan import Discovery, Plan, category_of
from .sensitive import SECRET_KEYS, USER_DATA_KEY

JSON = Any

# Prefix for categories the model does not know, should one clash with a key.
_UNKNOWN_PREFIX = "meta_data_"


def snapshot_keys(include_secrets: bool = False, include_user_data: bool = False) -> List[str]:
    """Top-level keys a snapshot has, in sorted order (unknown categories aside).

    The metadata attributes ``EC2Metadata`` declares (``lazy.declared``);
    its other public attributes (``model.NOT_METADATA``) are no keys.
    """
    names = []
    for name, declaration in declared(EC2Metadata).items():
        if not declaration.in_snapshot:
            continue
        if name in SECRET_KEYS and not include_secrets:
            continue
        if name == USER_DATA_KEY and not include_user_data:
            continue
        names.append(name)
    return sorted(names)


class _Memo:
    """The gathered bodies; a path the plan missed is fetched on demand."""

    def __init__(self, client: IMDSClient, outcomes: Dict[str, Body]) -> None:
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


def _unknown_category(memo: _Memo, discovery: Discovery, entry: str) -> JSON:
    """One category the model does not know, whole: text leaves, directories as dicts.

    Walked without recursion, within ``discovery``'s bounds (the plan's
    refusals included); raises the ``IMDSError`` that refuses the category.
    """
    path = CATEGORIES.named(entry)
    if not entry.endswith("/"):
        return parse.optional_text(path, memo.read(path))
    root: Dict[str, JSON] = {}
    pending = [(root, path)]
    while pending:
        tree, directory = pending.pop()
        for child in discovery.below(directory, memo.read(directory)):
            name = child[len(directory) :]
            if name.endswith("/"):
                subtree: Dict[str, JSON] = {}
                tree[name[:-1]] = subtree
                pending.append((subtree, child))
            else:
                tree[name] = parse.optional_text(child, memo.read(child))
    return root


def to_json(value: Any) -> JSON:
    """A model value as JSON types only."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, SpotInstanceAction):
        return {"action": value.action, "time": parse.iso_utc(value.time)}
    if isinstance(value, NetworkInterface):
        data = {name: to_json(getattr(value, name)) for name in declared(NetworkInterface)}
        data["mac"] = value.mac
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
    """User data as text when it is UTF-8 (gunzipped first if gzip'd), else base64.

    Gzip'd user data that inflates past ``bounds.MAX_USER_DATA`` (a few
    kilobytes can make gigabytes) is not inflated: it comes as the bytes
    served, in base64, as does anything that is not text.
    """
    compression = None
    body = raw
    if raw[:2] == b"\x1f\x8b":
        inflated = gunzip(raw, MAX_USER_DATA)
        if inflated is not None:
            body, compression = inflated, "gzip"
    try:
        return {"encoding": "text", "compression": compression, "content": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            "encoding": "base64",
            "compression": None,
            "content": base64.b64encode(raw).decode("ascii"),
        }


def gunzip(data: bytes, limit: int) -> Optional[bytes]:
    """``data`` inflated (every gzip member); ``None``: not gzip, or over ``limit`` bytes."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=31)  # a gzip member, header and trailer checked
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error:
            return None
        if len(out) > limit or not inflater.eof:
            return None  # too large, or cut short (or held back by the limit)
        data = inflater.unused_data
        if data[:2] != b"\x1f\x8b":
            # gzip.decompress allows zero padding after the last member, nothing else.
            return bytes(out) if not data.strip(b"\0") else None
    return bytes(out)


def _value(view: EC2Metadata, name: str) -> JSON:
    """One key of the snapshot: the model's value, by the model's rule for absent values.

    The model decides what may be absent: an optional value reads as ``None``
    or ``[]``, and a 404 for a value every instance has raises
    ``PathNotFoundError`` (``parse.text``), which fails the snapshot as any
    other failed read does. Tags turned off are the one absence the model
    raises for (the library's ``tags`` must say why): here they are ``None``.
    """
    try:
        return to_json(getattr(view, name))
    except TagsNotEnabledError:
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
    for an absent one. A category the model does not know is the exception
    (the ``meta-data/`` listing that names it is not): one that cannot be
    read, or breaks the bounds (``bounds``), is left out rather than taking
    the known values with it, and said: its one-line error is logged as a
    warning and listed in ``stats["refused"]``.
    ``stats``, if given, receives ``misses``: paths the
    prefetch plan did not cover. ``raw``, if given, receives every body read
    by path under ``/latest/`` (``None`` for 404), for faces that must name
    values by their IMDS path.
    """
    source = ec2_metadata if metadata is None else metadata
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
    plan = Plan(wanted, discover)
    memo = _Memo(client, client.fetch(plan.first, follow=plan.follow))
    view = EC2Metadata.from_reader(memo.read, client)
    result = {name: _value(view, name) for name in wanted}
    refused: List[str] = []
    if discover:
        refused = _discover(memo, plan, result)
    if stats is not None:
        stats["misses"] = list(memo.misses)
        stats["refused"] = refused
    if raw is not None:
        raw.update(memo.bodies())
    return dict(sorted(result.items()))


def _discover(memo: _Memo, plan: Plan, result: Dict[str, JSON]) -> List[str]:
    """Add the categories the model does not know to ``result``; the errors of those left out."""
    discovery = Discovery()
    discovery.refused.update(plan.discovery.refused)
    # The categories listing feeds only the plan: read here, a failure raises
    # rather than passing for "no other categories".
    unknown = discovery.categories(plan.unknown(memo.read(CATEGORIES.item)))
    for entry in unknown:
        try:
            value = _unknown_category(memo, discovery, entry)
        except IMDSError as exc:
            discovery.refused.setdefault(category_of(CATEGORIES.named(entry)), exc)
            continue
        key = entry.rstrip("/").replace("-", "_").lower()
        result[_UNKNOWN_PREFIX + key if key in result else key] = value
    messages = ["left out: {}".format(exc) for exc in discovery.refused.values()]
    logging = sys.modules.get("logging")  # a program that logs sees it; no import otherwise
    if logging is not None:
        for message in messages:
            logging.getLogger(__name__).warning("%s", message)
    return messages
