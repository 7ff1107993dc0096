"""The HTTP/1.1 the standard-library transport speaks: a request's bytes, an answer's parser.

Our own and small: a request is a few header lines, and the parser reads
only what IMDS sends (a status line, a few headers, a body framed by
Content-Length; chunked and read-until-close are handled too), within the
bounds on what an answer may make us hold (``bounds``). Standard library
only, as ``wire``, which drives it from its sockets.
"""

from __future__ import annotations

import re
from operator import methodcaller
from typing import Dict, Optional
from urllib.parse import quote

from .bounds import MAX_BODY, MAX_HEAD
from .transport import BODY_TOO_LARGE, DIGITS, Job, Response

USER_AGENT = "ec2-metadata-core"

# Strict forms, as DIGITS: str.isdigit() and int() accept more than HTTP allows.
_STATUS = re.compile(r"[1-9][0-9]{2}\Z")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}\Z")
# A header line cut at its first colon, in C: a watcher parses a few headers a
# request, for hours.
_NAME_VALUE = methodcaller("split", ":", 1)


class ResponseParser:
    """Incremental parser of one HTTP response."""

    def __init__(self, method: str) -> None:
        self._buf = bytearray()
        self._method = method
        self.status = 0
        self.headers: Dict[str, str] = {}
        self._length: Optional[int] = None
        self._chunked = False
        self._chunks = bytearray()
        self.keep_alive = True
        self.started = False

    def feed(self, data: bytes) -> Optional[Response]:
        self._buf += data
        self.started = True
        while not self.status:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise Malformed("header block too large")
                return None
            self._head(bytes(self._buf[:end]))
            del self._buf[: end + 4]
        if self._length is not None:
            if len(self._buf) < self._length:
                return None
            if len(self._buf) > self._length:
                self.keep_alive = False  # bytes we did not ask for: do not reuse
            return self._done(bytes(self._buf[: self._length]))
        if self._chunked:
            return self._dechunk()
        if len(self._buf) > MAX_BODY:
            raise Malformed(BODY_TOO_LARGE)
        return None  # framed by end of stream

    def _head(self, block: bytes) -> None:
        lines = block.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not _STATUS.match(parts[1]):
            raise Malformed("bad status line")
        status = int(parts[1])
        try:
            headers = {
                name.strip().lower(): value.strip() for name, value in map(_NAME_VALUE, lines[1:])
            }
        except ValueError:  # a line without a colon
            raise Malformed("bad header line") from None
        if 100 <= status < 200:
            return  # interim answer; the real one follows
        self.status = status
        self.headers = headers
        connection = headers.get("connection", "").lower()
        self.keep_alive = parts[0] == "HTTP/1.1" and "close" not in connection
        if self._method == "HEAD" or status in (204, 304):
            self._length = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in headers:
            length = headers["content-length"]
            if not DIGITS.match(length):
                raise Malformed("bad Content-Length")
            self._length = int(length)
            if self._length > MAX_BODY:
                raise Malformed("Content-Length {} ({})".format(self._length, BODY_TOO_LARGE))
        else:
            self.keep_alive = False

    def _dechunk(self) -> Optional[Response]:
        while True:
            line_end = self._buf.find(b"\r\n")
            if line_end < 0:
                return None
            size_text = bytes(self._buf[:line_end]).split(b";", 1)[0].strip()
            # int() alone would take "-6" (a negative size never consumes the
            # buffer: an endless loop), "0x10" or "1_0".
            if not _HEX.match(size_text):
                raise Malformed("bad chunk size")
            size = int(size_text, 16)
            if size > MAX_BODY:
                raise Malformed(BODY_TOO_LARGE)
            if size == 0:
                # The last chunk: done once the (usually empty) trailer has ended.
                if self._buf.find(b"\r\n\r\n", line_end) < 0:
                    return None
                return self._done(bytes(self._chunks))
            if len(self._buf) < line_end + 2 + size + 2:
                return None
            self._chunks += self._buf[line_end + 2 : line_end + 2 + size]
            if len(self._chunks) > MAX_BODY:
                raise Malformed(BODY_TOO_LARGE)
            del self._buf[: line_end + 2 + size + 2]

    def eof(self) -> Response:
        """The stream ended: a complete answer only if it was framed by the end."""
        if self.status and self._length is None and not self._chunked:
            self.keep_alive = False
            return self._done(bytes(self._buf))
        raise Malformed("connection closed mid-response" if self.started else "")

    def _done(self, body: bytes) -> Response:
        return Response(self.status, self.headers, body)


class Malformed(Exception):
    """Internal: the bytes on the wire are not a usable HTTP answer."""


# Path characters sent as they are: visible ASCII. Anything else (a space, a
# line break, non-ASCII from a listing entry) is percent-encoded, so no name
# IMDS lists can break the request line; '%' stays, for paths already quoted.
_PATH_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))
_PATH_UNSAFE = re.compile(r"[^\x21-\x7e]")


def encode(host_header: str, job: Job) -> bytes:
    """``job`` as the bytes of its request."""
    path = job.path
    if _PATH_UNSAFE.search(path):  # rare: spare every other request quote()'s cost
        path = quote(path, safe=_PATH_SAFE)
    method = job.method
    extra = "".join([name + ": " + value + "\r\n" for name, value in job.headers.items()])
    if method in ("PUT", "POST"):
        extra += "Content-Length: 0\r\n"
    return _REQUEST.format(method, path, host_header, extra).encode("latin-1")


_REQUEST = "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: " + USER_AGENT + "\r\nAccept: */*\r\n{}\r\n"
