"""Instance data files: a JSON tree that mirrors the paths under ``/latest/``.

Format (kept deliberately small so users can write one by hand):

* an object is a directory; its keys are path segments;
* a string is a text leaf; a list of strings is a leaf of one item per line;
* ``{"$json": <any>}`` is a JSON document leaf, pretty-printed the way IMDS
  prints ``iam/info`` (add ``"$compact": true`` for the one-line style of
  ``spot/instance-action``);
* ``{"$base64": "..."}`` is a binary leaf (gzip user data, non-UTF-8 tests);
* ``{"$text": "..."}`` is a text leaf, for when a plain string would be ambiguous.

``meta-data/public-keys`` holds ``"INDEX=NAME": {"openssh-key": "..."}``
entries, served as IMDS does (listed as ``INDEX=NAME``, addressed as ``INDEX``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

DEFAULT_INSTANCE_PATH = Path(__file__).resolve().parent / "data" / "default-instance.json"
TOP_LEVEL = ("dynamic", "meta-data", "user-data")

InstanceSource = Union[None, str, "os.PathLike[str]", Mapping[str, Any]]


class StoredValue:
    """A leaf of the tree: the bytes one path serves, encoded once so requests only copy them."""

    __slots__ = ("body", "content_type")

    def __init__(self, body: bytes, content_type: str = "text/plain") -> None:
        self.body = body
        self.content_type = content_type


class Directory:
    """A listing node; entry order is the file's order, which is the listing order."""

    __slots__ = ("entries",)

    def __init__(self, entries: Optional[Dict[str, Node]] = None) -> None:
        self.entries: Dict[str, Node] = entries if entries is not None else {}


Node = Union[Directory, StoredValue]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str):
        raise ValueError(f"{where}: entry names must be strings, got {_type_name(name)}")
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{where}: bad entry name {name!r} (empty, '.', '..' or contains '/')")
    return name


def _json_leaf(spec: Mapping[str, Any], where: str) -> StoredValue:
    compact = spec.get("$compact", False)
    if not isinstance(compact, bool):
        raise ValueError(f"{where}: $compact must be true or false")
    try:
        if compact:
            text = json.dumps(spec["$json"], allow_nan=False)
        else:
            # IMDS pretty-prints its documents with a space before the colon.
            text = json.dumps(spec["$json"], indent=2, separators=(",", " : "), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: $json value is not JSON-serializable: {exc}") from None
    return StoredValue(text.encode("utf-8"))


def _special_leaf(spec: Mapping[str, Any], where: str) -> StoredValue:
    keys = set(spec)
    if keys in ({"$json"}, {"$json", "$compact"}):
        return _json_leaf(spec, where)
    if keys == {"$base64"}:
        raw = spec["$base64"]
        if not isinstance(raw, str):
            raise ValueError(f"{where}: $base64 must be a string")
        try:
            return StoredValue(base64.b64decode(raw.encode("ascii"), validate=True))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise ValueError(f"{where}: $base64 is not valid base64") from None
    if keys == {"$text"}:
        text = spec["$text"]
        if not isinstance(text, str):
            raise ValueError(f"{where}: $text must be a string")
        return StoredValue(text.encode("utf-8"))
    shown = ", ".join(sorted(repr(k) for k in keys))
    raise ValueError(
        f"{where}: a leaf object must hold exactly one of $json (with optional $compact), "
        f"$base64 or $text, got keys {shown}"
    )


def compile_node(value: Any, where: str) -> Node:
    """Turn one data-file value into a served node; ``where`` names it in errors."""
    if isinstance(value, str):
        return StoredValue(value.encode("utf-8"))
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(
                    f"{where}[{index}]: list items must be strings, got {_type_name(item)}"
                )
        return StoredValue("\n".join(value).encode("utf-8"))
    if isinstance(value, dict):
        if any(isinstance(k, str) and k.startswith("$") for k in value):
            return _special_leaf(value, where)
        entries: Dict[str, Node] = {}
        for key, child in value.items():
            name = _check_name(key, where)
            entries[name] = compile_node(child, f"{where}/{name}")
        return Directory(entries)
    raise ValueError(
        f"{where}: expected a string, a list of strings, an object (directory) or a "
        f"$json/$base64/$text leaf, got {_type_name(value)}"
    )


def build_tree(data: Any, label: str = "instance") -> Directory:
    """Validate a whole instance and compile it; errors start with ``label``."""
    if not isinstance(data, dict):
        raise ValueError(f"{label}: the top level must be an object, got {_type_name(data)}")
    for key in data:
        if key not in TOP_LEVEL:
            raise ValueError(
                f"{label}: unexpected top-level entry {key!r} (expected {', '.join(TOP_LEVEL)};"
                " paths are relative to /latest/)"
            )
    if not isinstance(data.get("meta-data"), dict):
        raise ValueError(f"{label}: meta-data: missing, or not an object")
    root = Directory()
    for key in TOP_LEVEL:  # fixed order: IMDS lists dynamic, meta-data, user-data
        if key not in data:
            continue
        try:
            root.entries[key] = compile_top(key, data[key])
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
    return root


def compile_top(key: str, value: Any) -> Node:
    """Compile a top-level entry, which has stricter shapes than inner ones."""
    node = compile_node(value, key)
    if key == "user-data":
        if not isinstance(node, StoredValue):
            raise ValueError("user-data: must be a leaf (string, $base64 or $text), not an object")
        node.content_type = "application/octet-stream"
    elif not isinstance(node, Directory):
        raise ValueError(f"{key}: must be an object (directory)")
    return node


def _read(source: Union[str, os.PathLike[str]]) -> Tuple[Any, str]:
    label = os.fspath(source)
    try:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ValueError(f"{label}: cannot read instance file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{label}: instance file is not UTF-8 text") from None
    try:
        return json.loads(text), label
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{label}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def load(source: InstanceSource) -> Tuple[Dict[str, Any], Directory]:
    """Load and compile in one pass; the simulator needs both halves."""
    if source is None:
        data, label = _read(DEFAULT_INSTANCE_PATH)
    elif isinstance(source, Mapping):
        data, label = copy.deepcopy(dict(source)), "instance"
    else:
        data, label = _read(source)
    tree = build_tree(data, label)
    return data, tree


def load_instance(source: InstanceSource = None) -> Dict[str, Any]:
    """Validate an instance (file path, dict, or None for the bundled default).

    Returns a private copy of the data so callers can tweak it and pass it to
    ``Simulator(instance=...)``. Raises ``ValueError`` with a one-line message
    naming the bad path.
    """
    return load(source)[0]


def split_data_path(path: str) -> List[str]:
    """Split a knob path (``meta-data/x``, ``/latest/meta-data/x``) into segments."""
    segments = [s for s in path.split("/") if s]
    if segments and segments[0] == "latest":
        segments = segments[1:]
    if not segments:
        raise ValueError(f"{path!r}: path must name something under /latest/")
    if segments[0] not in TOP_LEVEL:
        raise ValueError(f"{path!r}: path must start with one of {', '.join(TOP_LEVEL)}")
    for segment in segments:
        _check_name(segment, path)
    return segments
