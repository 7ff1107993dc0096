"""Turn IMDS bodies into Python values; one function per documented shape.

Every parser takes the path (for error messages) and the body (``None`` when
IMDS answered 404) and either returns the value or raises an ``IMDSError``:
absent values become ``None`` or ``[]``, malformed ones an error, never a
guess.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Dict, List, Optional

from .errors import MalformedResponseError, PathNotFoundError


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
    """One value a line; ``[]`` when absent."""
    if body is None:
        return []
    return [line for line in decode(path, body).splitlines() if line]


def listing(path: str, body: Optional[bytes]) -> List[str]:
    """Entries of a directory listing, without the trailing ``/`` of subdirectories."""
    return [line.rstrip("/") for line in lines(path, body)]


def integer(path: str, body: Optional[bytes]) -> int:
    value = text(path, body).strip()
    try:
        return int(value)
    except ValueError:
        raise MalformedResponseError(path, "integer") from None


def optional_integer(path: str, body: Optional[bytes]) -> Optional[int]:
    return None if body is None else integer(path, body)


def json_document(path: str, body: Optional[bytes]) -> Any:
    if body is None:
        raise PathNotFoundError(path)
    try:
        return json.loads(decode(path, body))
    except ValueError:
        raise MalformedResponseError(path, "JSON") from None


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
    except ValueError:
        raise MalformedResponseError(path, "ISO 8601 time") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)
