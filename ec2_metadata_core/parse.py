"""Turn IMDS bodies into Python values; one function per documented shape.

Every parser takes the path (for error messages) and the body (``None`` when
IMDS answered 404) and either returns the value or raises an ``IMDSError``:
absent values become ``None`` or ``[]``, malformed ones an error, never a
guess.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any, Dict, List, Optional

from .bounds import MAX_LISTING_ENTRIES
from .errors import LimitError, MalformedResponseError, PathNotFoundError

_INTEGER = re.compile(r"-?[0-9]{1,18}\Z")


def text(path: str, body: Optional[bytes]) -> str:
    """A value the service always has; 404 is an error."""
    if body is None:
        raise PathNotFoundError(path)
    return decode(path, body)


def optional_text(path: str, body: Optional[bytes]) -> Optional[str]:
    return None if body is None else decode(path, body)


def decode(path: str, body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedResponseError(path, "UTF-8 text") from None


def lines(path: str, body: Optional[bytes]) -> List[str]:
    """One value a line; ``[]`` when absent.

    IMDS ends lines with a line feed (a CRLF is taken too); ``str.splitlines``
    would also cut at characters a value may hold (form feed, NEL, U+2028, ...).
    """
    if body is None:
        return []
    found = (line[:-1] if line.endswith("\r") else line for line in decode(path, body).split("\n"))
    return [line for line in found if line]


def listing(path: str, body: Optional[bytes]) -> List[str]:
    """Entries of a directory listing, without the trailing ``/`` of subdirectories."""
    return [line.rstrip("/") for line in lines(path, body)]


# What a listed name may not hold: it becomes one segment of the next path,
# so nothing that ends a segment or the path ("/", "?", "#"), escapes ("%"),
# or is not a visible character.
_NOT_IN_A_NAME = re.compile(r"[/?#%\s]")


def plain_name(name: str) -> bool:
    """Whether a listed ``name`` can be one path segment as it is (see ``entries``)."""
    return name not in ("", ".", "..") and not _NOT_IN_A_NAME.search(name) and name.isprintable()


def entries(path: str, body: Optional[bytes]) -> List[str]:
    """A listing whose entries name the next paths to read, as listed (a directory ends in ``/``).

    Each entry must be a plain name (``plain_name``: not empty, ``.`` or
    ``..``, no ``/ ? # %``, no space or control character), and there are at
    most ``bounds.MAX_LISTING_ENTRIES``: a listing that breaks either is
    malformed as a whole, never read in part, and no such name is put into a path.
    """
    if body is None:
        return []
    found = [line[:-1] if line.endswith("\r") else line for line in decode(path, body).split("\n")]
    if found[-1] == "":
        found.pop()  # the line feed that ends the last line
    if len(found) > MAX_LISTING_ENTRIES:
        raise LimitError(
            path, "a listing of {} entries, more than {}".format(len(found), MAX_LISTING_ENTRIES)
        )
    plain_names(path, found)
    return found


def plain_names(path: str, listed: List[str]) -> List[str]:
    """``listed`` (from the listing at ``path``; a directory may end in ``/``) if every
    one is a ``plain_name``, else ``MalformedResponseError``."""
    for entry in listed:
        if not plain_name(entry[:-1] if entry.endswith("/") else entry):
            raise MalformedResponseError(path, "listing ({!r} is not a plain name)".format(entry))
    return listed


def names(path: str, body: Optional[bytes]) -> List[str]:
    """The names a listing of paths gives (``entries``), without a directory's trailing ``/``."""
    return [entry[:-1] if entry.endswith("/") else entry for entry in entries(path, body)]


def integer(path: str, body: Optional[bytes]) -> int:
    # int() alone also takes "1_0", "+1" and non-ASCII digits such as "٣".
    value = text(path, body).strip()
    if not _INTEGER.match(value):
        raise MalformedResponseError(path, "integer")
    return int(value)


def optional_integer(path: str, body: Optional[bytes]) -> Optional[int]:
    return None if body is None else integer(path, body)


# A \uD800..\uDFFF escape: only then can a parsed string hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# IMDS documents nest three levels at most; every reader of a snapshot
# (flatten, JSON and YAML writers, Jinja) recurses once a level.
MAX_JSON_DEPTH = 32


def json_document(path: str, body: Optional[bytes]) -> Any:
    """A JSON document as RFC 8259 has it, so it can be written out as JSON again.

    Python's reader also takes NaN and Infinity (and turns 1e999 into inf),
    and keeps an unpaired surrogate escape as a string no encoder can write:
    the snapshot would no longer be JSON. Nesting deeper than
    ``MAX_JSON_DEPTH`` is malformed too, not a RecursionError later.
    """
    if body is None:
        raise PathNotFoundError(path)
    try:
        value = json.loads(decode(path, body), parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError):
        raise MalformedResponseError(path, "JSON") from None
    may_nest = body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    if (may_nest or _SURROGATE_ESCAPE.search(body)) and not _writable(value):
        raise MalformedResponseError(path, "JSON")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _writable(value: Any) -> bool:
    """No lone surrogate in any string, no nesting past ``MAX_JSON_DEPTH``."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                return False
            children = [*item, *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def optional_json_object(path: str, body: Optional[bytes]) -> Optional[Dict[str, Any]]:
    if body is None:
        return None
    value = json_document(path, body)
    if not isinstance(value, dict):
        raise MalformedResponseError(path, "JSON object")
    return value


def json_list(path: str, body: Optional[bytes]) -> List[Any]:
    """A JSON array (maintenance events); ``[]`` when absent or empty."""
    if body is None or not body.strip():
        return []
    value = json_document(path, body)
    if not isinstance(value, list):
        raise MalformedResponseError(path, "JSON list")
    return value


def timestamp(path: str, value: Any) -> dt.datetime:
    """An ISO 8601 UTC time such as ``2026-01-01T00:00:00Z``, as an aware datetime."""
    if not isinstance(value, str):
        raise MalformedResponseError(path, "ISO 8601 time")
    text_value = value.strip()
    if text_value.endswith(("Z", "z")):
        text_value = text_value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text_value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.timezone.utc)
        # OverflowError: an offset that moves the time past year 1 or 9999.
        return parsed.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise MalformedResponseError(path, "ISO 8601 time") from None


def http_date(path: str, value: Any) -> dt.datetime:
    """A time as IMDS writes maintenance windows, ``21 Jan 2019 09:00:43 GMT``, made aware."""
    if not isinstance(value, str):
        raise MalformedResponseError(path, "maintenance time")
    import email.utils  # only the events watcher reads these times

    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):  # TypeError before Python 3.10
        raise MalformedResponseError(path, "maintenance time") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def iso_utc(value: dt.datetime) -> str:
    """An aware time as ISO 8601 UTC with ``Z``, the form every face hands out."""
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
