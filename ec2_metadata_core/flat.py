"""The snapshot flattened to one level, for Jinja templates and shell scripts.

The rule, in full:

1. Nested keys are joined with ``_``: ``{"tags": {"Name": "web"}}`` gives
   ``tags_Name``; list items of mappings are numbered (``..._0_Code``); lists
   of scalars stay lists; an empty mapping contributes no key.
2. Every character outside ``[A-Za-z0-9_]`` becomes ``_`` (so a MAC
   ``0a:1b:...`` reads ``0a_1b_...``, the tag ``aws:autoscaling:groupName``
   reads ``tags_aws_autoscaling_groupName``); a leading digit gets a ``_``.
3. When two different paths give the same key (tags ``env-tier`` and
   ``env_tier``), the one whose name needed no change (the first such path
   in sort order, should parts joined with ``_`` coincide) keeps the key and
   every other one gets ``_`` plus the first 8 hex digits of the SHA-1 of its
   path (path parts joined with NUL; 16, then 40, should that name be taken).
   Every value survives, the result depends only on the input, and
   ``flatten_with_paths`` says which path each key came from.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Set, Tuple

Scalar = Any  # str, int, float, bool or None
Path = Tuple[str, ...]

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")


def _leaves(value: Any, path: Path, out: List[Tuple[Path, Any]]) -> None:
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            _leaves(value[key], (*path, str(key)), out)
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for index, item in enumerate(value):
            _leaves(item, (*path, str(index)), out)
    else:
        out.append((path, value))


def _plain_key(path: Path) -> str:
    key = _UNSAFE.sub("_", "_".join(path))
    return "_" + key if not key or key[0].isdigit() else key


def _suffixed(path: Path, key: str, taken: Set[str]) -> str:
    import hashlib  # loads OpenSSL: only a clash of names needs it

    digest = hashlib.sha1("\0".join(path).encode("utf-8")).hexdigest()
    for width in (8, 16, 40):
        name = "{}_{}".format(key, digest[:width])
        if name not in taken:
            return name
    raise AssertionError("a SHA-1 collision between two paths")  # pragma: no cover


def flatten_with_paths(snapshot: Dict[str, Any], root: str = "") -> Dict[str, Tuple[Path, Any]]:
    """Flat key -> (the path it came from, its value); see the module docstring.

    ``root`` is the key ``snapshot`` sits under in a larger document (the
    grains flatten the tags under ``tags``): the first part of every path, so
    keys and collision suffixes come out as in the larger document's export.
    A prefix for names is a different thing: ``to_env``'s, put in front as is.
    """
    leaves: List[Tuple[Path, Any]] = []
    _leaves(snapshot, (root,) if root else (), leaves)
    groups: Dict[str, List[Path]] = {}
    values: Dict[Path, Any] = {}
    for path, value in leaves:
        groups.setdefault(_plain_key(path), []).append(path)
        values[path] = value
    result: Dict[str, Tuple[Path, Any]] = {}
    suffixed: List[Tuple[Path, str]] = []
    for key, paths in groups.items():
        unchanged = [path for path in paths if "_".join(path) == key]
        keeper = min(unchanged) if unchanged else (paths[0] if len(paths) == 1 else None)
        if keeper is not None:
            result[key] = (keeper, values[keeper])
        suffixed.extend((path, key) for path in paths if path != keeper)
    # Plain names first, then suffixes in path order: a name someone chose to
    # look like a suffixed one keeps it, and the suffix grows instead.
    taken = set(result)
    for path, key in sorted(suffixed):
        name = _suffixed(path, key, taken)
        taken.add(name)
        result[name] = (path, values[path])
    return dict(sorted(result.items()))


def flatten(snapshot: Dict[str, Any], root: str = "") -> Dict[str, Scalar]:
    """The snapshot as ``{identifier: scalar or list of scalars}``, with keys sorted."""
    return {key: value for key, (_, value) in flatten_with_paths(snapshot, root).items()}


def check_prefix(prefix: str) -> str:
    """``prefix`` if every flat key with it in front is an identifier, else ``ConfigError``.

    Flat keys are identifiers that may start with ``_``: a prefix keeps them so
    if it is empty or an identifier itself (``my-`` or ``9`` would make
    ``my-region`` or ``9region``, which no shell or template accepts).
    """
    if prefix and not IDENTIFIER.match(prefix):
        from .errors import ConfigError

        raise ConfigError(
            "prefix {!r} would not make identifiers: use letters, digits and _, "
            "not starting with a digit".format(prefix)
        )
    return prefix


def to_env(flat: Dict[str, Scalar], prefix: Optional[str] = None) -> str:
    """``export NAME='value'`` lines; lists are newline-joined, None is empty.

    ``prefix`` goes in front of each name as it is; one that would not make
    shell names (``my-``, ``9``) raises ``ConfigError``. A value with a NUL
    character raises ``FormatError`` naming it: no shell variable can hold
    one (a sourcing shell would drop it, or the rest of the value, silently).
    """
    import shlex

    check_prefix(prefix or "")

    lines = []
    for key, value in flat.items():
        name = key if prefix is None else prefix + key
        if value is None:
            text = ""
        elif isinstance(value, list):
            text = "\n".join(_scalar_text(v) for v in value)
        else:
            text = _scalar_text(value)
        if "\0" in text:
            from .errors import FormatError

            raise FormatError(
                "{} holds a NUL character, which a shell variable cannot carry: "
                "use --format json or flat".format(name)
            )
        lines.append("export {}={}".format(name, shlex.quote(text)))
    return "\n".join(lines)


def _scalar_text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
