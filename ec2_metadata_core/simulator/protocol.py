"""The instance protocol: what the simulated IMDS answers a well-formed request.

This module's one job is IMDS's own rules, with no sockets and no faults in
them: the token ``PUT`` and its TTL header, IMDSv2's 401 for a request without
a live token, the 405s, and the lookup of a path in the served tree (listings,
``public-keys/INDEX``, tags on or off, a path taken literally), answered as a
``Reply`` (status, body, content type, headers) with the XHTML error page real
IMDS sends. The tree changes live through ``set`` and ``delete``. ``Simulator``
(``server.py``) mixes ``InstanceProtocol`` in and holds its state.
"""

from __future__ import annotations

import base64
import http
import re
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional
from urllib.parse import unquote

from .instance import Directory, Node, StoredValue, compile_node, compile_top, split_data_path
from .signing import IdentitySigner, sign_tree

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER_KEY = TTL_HEADER.lower()
TOKEN_HEADER_KEY = TOKEN_HEADER.lower()
MAX_TOKEN_TTL = 21600
# Characters a URL path carries as they are (RFC 3986 pchar): a name made only
# of these is matched literally, never through its percent-encoded form.
_LITERAL = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]*\Z")
_TTL_RE = re.compile(r"[0-9]{1,9}")
_IDENTITY_DOCUMENT = ["dynamic", "instance-identity", "document"]


class Reply:
    """One answer before it is framed: the server writes it, a fault may rewrite it."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "text/plain",
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers: Dict[str, str] = headers if headers is not None else {}


def phrase(status: int) -> str:
    """The reason phrase of ``status`` (``Error`` for a code HTTP does not name)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_ERROR_PAGES: Dict[int, bytes] = {}


def _error_page(status: int) -> bytes:
    """The XHTML page real IMDS sends with errors: clients must not mistake it for a value."""
    page = _ERROR_PAGES.get(status)
    if page is None:
        title = f"{status} - {phrase(status)}"
        page = (
            '<?xml version="1.0" encoding="iso-8859-1"?>\n'
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
            '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
            f" <head>\n  <title>{title}</title>\n </head>\n"
            f" <body>\n  <h1>{title}</h1>\n </body>\n</html>\n"
        ).encode("ascii")
        _ERROR_PAGES[status] = page
    return page


def error(status: int, headers: Optional[Dict[str, str]] = None) -> Reply:
    """An error answer as IMDS writes one: ``status`` with its XHTML page."""
    return Reply(status, _error_page(status), "text/html", headers)


class InstanceProtocol:
    """The tree, the tokens and the IMDS rules of ``Simulator`` (mixed in)."""

    signer: Optional[IdentitySigner]
    tags_enabled: bool
    imdsv1: bool
    vanishing_tag: Optional[str]
    _data_lock: threading.Lock  # guards the tree
    _root: Directory
    _tokens: Dict[str, float]  # token -> monotonic expiry, under _lock
    _token_ttl_cap: Optional[int]

    if TYPE_CHECKING:  # provided by Simulator (server.py) and FaultsAndLimits (faults.py)
        _lock: threading.Lock
        _error_rate: float

        def _random_error(self) -> Optional[Reply]: ...

    @property
    def token_ttl_cap(self) -> Optional[int]:
        return self._token_ttl_cap

    @token_ttl_cap.setter
    def token_ttl_cap(self, seconds: Optional[int]) -> None:
        if seconds is not None and not 1 <= seconds <= MAX_TOKEN_TTL:
            raise ValueError(f"token_ttl_cap must be None or 1..{MAX_TOKEN_TTL} seconds")
        self._token_ttl_cap = seconds

    # -- live changes ----------------------------------------------------------

    def set(self, path: str, value: Any) -> None:
        """Create or replace ``path`` (e.g. ``meta-data/spot/instance-action``) live.

        ``value`` uses the data-file format; missing directories are created.
        """
        segments = split_data_path(path)
        where = "/".join(segments)
        node = compile_top(segments[0], value) if len(segments) == 1 else compile_node(value, where)
        with self._data_lock:
            directory = self._root
            for depth, segment in enumerate(segments[:-1]):
                child = directory.entries.get(segment)
                if child is None:
                    child = directory.entries[segment] = Directory()
                elif not isinstance(child, Directory):
                    blocked = "/".join(segments[: depth + 1])
                    raise ValueError(f"{path!r}: {blocked} is a leaf, not a directory")
                directory = child
            if segments == ["user-data"] and isinstance(node, StoredValue):
                node.content_type = "application/octet-stream"
            directory.entries[segments[-1]] = node
            if len(segments) == 1:  # keep the /latest/ listing in IMDS order
                order = ("dynamic", "meta-data", "user-data")
                entries = self._root.entries
                self._root.entries = {k: entries[k] for k in order if k in entries}
            if _IDENTITY_DOCUMENT[: len(segments)] == segments:  # signed again when changed
                sign_tree(self._root, self.signer)

    def delete(self, path: str) -> None:
        """Remove ``path`` live (it then answers 404); KeyError if it is absent."""
        segments = split_data_path(path)
        if segments == ["meta-data"]:
            raise ValueError("meta-data cannot be deleted")
        with self._data_lock:
            directory: Node = self._root
            for segment in segments[:-1]:
                if not isinstance(directory, Directory) or segment not in directory.entries:
                    raise KeyError(path)
                directory = directory.entries[segment]
            if not isinstance(directory, Directory) or segments[-1] not in directory.entries:
                raise KeyError(path)
            del directory.entries[segments[-1]]

    def expire_tokens(self) -> None:
        """Forget every issued token: the next request carrying one gets 401."""
        with self._lock:
            self._tokens.clear()

    # -- answers ---------------------------------------------------------------

    def _answer(self, method: str, raw_path: str, fields: Dict[str, str]) -> Reply:
        """The answer to ``method raw_path`` with headers ``fields`` (lower-case names)."""
        path = raw_path
        if method == "PUT":
            if path != TOKEN_PATH:
                return error(405, {"Allow": "GET, HEAD"})
            return self._issue_token(fields)
        if method not in ("GET", "HEAD"):
            allow = "PUT" if path == TOKEN_PATH else "GET, HEAD"
            return error(405, {"Allow": allow})
        if path == TOKEN_PATH:
            return error(405, {"Allow": "PUT"})
        if self._error_rate > 0:  # --error-rate (faults.py): after the 405s, before the 401
            reply = self._random_error()
            if reply is not None:
                return reply
        if not self._authorized(fields.get(TOKEN_HEADER_KEY)):
            return error(401)
        return self._lookup(raw_path)

    def _issue_token(self, fields: Dict[str, str]) -> Reply:
        if "x-forwarded-for" in fields:
            return error(403)
        raw = fields.get(TTL_HEADER_KEY)
        if raw is None or not _TTL_RE.fullmatch(raw.strip()):
            return error(400)
        requested = int(raw.strip())
        if not 1 <= requested <= MAX_TOKEN_TTL:
            return error(400)
        cap = self._token_ttl_cap
        granted = min(requested, cap) if cap is not None else requested
        token = base64.b64encode(secrets.token_bytes(42)).decode("ascii")
        now = time.monotonic()
        with self._lock:
            if len(self._tokens) > 1000:
                self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[token] = now + granted
        return Reply(200, token.encode("ascii"), headers={TTL_HEADER: str(granted)})

    def _authorized(self, token: Optional[str]) -> bool:
        if token is None:
            return self.imdsv1
        with self._lock:
            expiry = self._tokens.get(token)
            if expiry is None:
                return False
            if expiry <= time.monotonic():
                del self._tokens[token]
                return False
        return True

    def _lookup(self, raw_path: str) -> Reply:
        segments = [s for s in raw_path.split("/") if s]
        if not segments:
            return Reply(200, b"latest")
        if segments[0] != "latest":
            return error(404)
        segments = segments[1:]
        tags_enabled = self.tags_enabled
        if not tags_enabled and segments[:2] == ["meta-data", "tags"]:
            return error(404)
        with self._data_lock:
            node: Node = self._root
            for depth, segment in enumerate(segments):
                if not isinstance(node, Directory):
                    return error(404)
                child = _child(node, segment)
                if child is None and depth == 2 and segments[:2] == ["meta-data", "public-keys"]:
                    child = _public_key(node, segment)
                if child is None:
                    return error(404)
                node = child
            if isinstance(node, StoredValue):
                return Reply(200, node.body, node.content_type)
            body = _listing(node, segments, tags_enabled)
        vanishing = self.vanishing_tag
        if vanishing is not None and segments == ["meta-data", "tags", "instance"]:
            # Named by the listing, gone when read: its own path answers 404.
            body += (b"\n" if body else b"") + vanishing.encode("utf-8")
        return Reply(200, body)


def _child(directory: Directory, segment: str) -> Optional[Node]:
    """The entry a path segment names, taken literally.

    Only a name that cannot travel in a path as it is (a space, non-ASCII) is
    also found by its percent-encoded form, the one way a client can send it.
    """
    child = directory.entries.get(segment)
    if child is None and "%" in segment:
        name = unquote(segment)
        if not _LITERAL.match(name):
            child = directory.entries.get(name)
    return child


def _public_key(directory: Directory, index: str) -> Optional[Node]:
    """public-keys entries are stored as ``INDEX=NAME`` but addressed by INDEX."""
    for name, child in directory.entries.items():
        if "=" in name and name.split("=", 1)[0] == index and isinstance(child, Directory):
            return child
    return None


def _listing(directory: Directory, segments: List[str], tags_enabled: bool) -> bytes:
    at_root = not segments  # IMDS lists /latest/ entries without trailing slashes
    in_keys = segments == ["meta-data", "public-keys"]
    hide_tags = not tags_enabled and segments == ["meta-data"]
    names = []
    for name, child in directory.entries.items():
        if hide_tags and name == "tags":
            continue
        if isinstance(child, Directory) and not at_root and not (in_keys and "=" in name):
            name += "/"
        names.append(name)
    return "\n".join(names).encode("utf-8")
