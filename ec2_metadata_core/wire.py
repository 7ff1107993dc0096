"""The standard-library transport: one IMDS request, blocking, on a plain socket.

The scheduler (``client``) decides what goes out when, and runs several of
these sends at once on its worker threads; a transport moves one request and
says how it went. It raises nothing but our ``IMDSError``s, and marks on the
``Job`` what the scheduler's congestion control needs to know: ``throttled``
when the service cut a fresh connection before any answer (a connection
cap), ``resent`` for each connect abandoned after ``CONNECT_PATIENCE`` (a SYN
the service dropped: a fresh one goes out in the same attempt, rather than
waiting out the kernel's 1 s resend).

The HTTP/1.1 is our own and small: a request is a few header lines, and the
parser reads only what IMDS sends (a status line, a few headers, a body
framed by Content-Length; chunked and read-until-close are handled too).
Measured on the same scheduler, ``http.client`` cost twice the CPU a request
(its header parsing goes through ``email``), which every gather and a
watcher polling for hours would pay.

``StdlibTransport`` must stay standard library only: it runs inside an
Ansible module payload and in Salt minions. The host is resolved once per
transport, idle kept-alive connections are reused (the real service closes
every one; the simulator's keep-alive knob does not), and a forked child
never touches the connections it inherited. ``compat`` holds the transports
over a caller's ``requests.Session`` or ``urllib3.PoolManager``.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import struct
import sys
import threading
import time
from typing import Any, Dict, List, NamedTuple, NoReturn, Optional, Tuple
from urllib.parse import quote

from .config import host_port
from .errors import IMDSError, IMDSTimeoutError, IMDSUnavailableError

USER_AGENT = "ec2-metadata-core"
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
# What a refused connection most likely means, said where it happens.
NOT_REACHED_HINT = "not on EC2, or the metadata endpoint is wrong or turned off"
# Idle kept-alive connections held for reuse (when the service keeps any).
MAX_IDLE = 32
# A connect not done by then met a dropped SYN (a full listen queue, the
# packet cap): send a fresh one rather than wait for the kernel's 1 s resend.
CONNECT_PATIENCE = 0.2


class Response(NamedTuple):
    status: int
    headers: Dict[str, str]  # names lower-cased
    body: bytes

    def __repr__(self) -> str:
        # A body can be the session token, credentials or user data.
        return "Response(status={}, headers={!r}, body=<{} bytes>)".format(
            self.status, self.headers, len(self.body)
        )


class Job:
    """One request, with the scheduler's bookkeeping riding along through retries.

    A transport sets ``throttled`` (a fresh connection cut before any answer)
    and counts ``resent`` (connects abandoned for a fresh SYN).
    """

    __slots__ = ("headers", "key", "method", "not_before", "path", "resent", "throttled", "tries")

    def __init__(
        self,
        key: Any,
        method: str,
        path: str,
        headers: Dict[str, str],
        not_before: float = 0.0,
        tries: int = 0,
    ) -> None:
        self.key = key
        self.method = method
        self.path = path
        self.headers = headers
        self.not_before = not_before
        self.tries = tries
        self.throttled = False
        self.resent = 0


# Strict forms: str.isdigit() and int() accept more than HTTP allows
# (superscript digits, signs, underscores, spaces).
_STATUS = re.compile(r"[1-9][0-9]{2}\Z")
_DIGITS = re.compile(r"[0-9]{1,16}\Z")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}\Z")


class _Parser:
    """Incremental parser of one response."""

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
                    raise _Malformed("header block too large")
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
            raise _Malformed("body too large")
        return None  # framed by end of stream

    def _head(self, block: bytes) -> None:
        lines = block.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not _STATUS.match(parts[1]):
            raise _Malformed("bad status line")
        status = int(parts[1])
        headers: Dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _Malformed("bad header line")
            headers[name.strip().lower()] = value.strip()
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
            if not _DIGITS.match(length):
                raise _Malformed("bad Content-Length")
            self._length = int(length)
            if self._length > MAX_BODY:
                raise _Malformed("Content-Length out of range")
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
                raise _Malformed("bad chunk size")
            size = int(size_text, 16)
            if size > MAX_BODY:
                raise _Malformed("body too large")
            if size == 0:
                # The last chunk: done once the (usually empty) trailer has ended.
                if self._buf.find(b"\r\n\r\n", line_end) < 0:
                    return None
                return self._done(bytes(self._chunks))
            if len(self._buf) < line_end + 2 + size + 2:
                return None
            self._chunks += self._buf[line_end + 2 : line_end + 2 + size]
            if len(self._chunks) > MAX_BODY:
                raise _Malformed("body too large")
            del self._buf[: line_end + 2 + size + 2]

    def eof(self) -> Response:
        """The stream ended: a complete answer only if it was framed by the end."""
        if self.status and self._length is None and not self._chunked:
            self.keep_alive = False
            return self._done(bytes(self._buf))
        raise _Malformed("connection closed mid-response" if self.started else "")

    def _done(self, body: bytes) -> Response:
        return Response(self.status, self.headers, body)


class _Malformed(Exception):
    """Internal: the bytes on the wire are not a usable HTTP answer."""


class Transport:
    """Sends one request to ``base_url + job.path``, blocking; raises only our errors.

    ``send`` runs on the scheduler's worker threads, several at once.
    """

    # The caller's HTTP library, whose exceptions ec2-metadata users catch (see compat).
    library: Optional[str] = None

    def send(self, job: Job, timeout: float) -> Response:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Drop pooled connections (they are re-opened on demand)."""


# Path characters sent as they are: visible ASCII. Anything else (a space, a
# line break, non-ASCII from a listing entry) is percent-encoded, so no name
# IMDS lists can break the request line; '%' stays, for paths already quoted.
_PATH_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))
_PATH_UNSAFE = re.compile(r"[^\x21-\x7e]")


def encode(host_header: str, job: Job) -> bytes:
    path = job.path
    if _PATH_UNSAFE.search(path):  # rare: spare every other request quote()'s cost
        path = quote(path, safe=_PATH_SAFE)
    lines = [
        "{} {} HTTP/1.1".format(job.method, path),
        "Host: " + host_header,
        "User-Agent: " + USER_AGENT,
        "Accept: */*",
    ]
    lines.extend("{}: {}".format(k, v) for k, v in job.headers.items())
    if job.method in ("PUT", "POST"):
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Stale(Exception):
    """Internal: a kept-alive connection the service had closed; try a fresh one."""


class StdlibTransport(Transport):
    def __init__(self, base_url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL: {!r}".format(base_url))
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        host_text = "[{}]".format(self.host) if ":" in self.host else self.host
        default_port = 443 if self.https else 80
        self.host_header = (
            host_text if self.port == default_port else "{}:{}".format(host_text, self.port)
        )
        self._address: Optional[Tuple[int, Any]] = None
        self._idle: List[socket.socket] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._tls: Any = None  # the ssl context, made once
        self._kernel_timeouts = sys.platform.startswith("linux") and not self.https

    def __repr__(self) -> str:
        scheme = "https" if self.https else "http"
        return "StdlibTransport({}://{})".format(scheme, self.host_header)

    def describe(self) -> str:
        return host_port(self.host, self.port)

    def unreachable(self, exc: BaseException) -> IMDSUnavailableError:
        """The one-line error for whatever connecting raised (refused, DNS, IDNA, TLS)."""
        return IMDSUnavailableError(
            "cannot reach IMDS at {}: {}".format(self.describe(), _why(exc, self.https))
        )

    def send(self, job: Job, timeout: float) -> Response:
        deadline = time.monotonic() + timeout
        request = encode(self.host_header, job)
        sock = self._take_idle()
        if sock is not None:
            try:
                return self._exchange(sock, job, request, deadline, timeout, False)
            except _Stale:
                self.close()  # its idle siblings are as stale as it was
        sock = self._connect(job, deadline, timeout)
        return self._exchange(sock, job, request, deadline, timeout, True)

    def _take_idle(self) -> Optional[socket.socket]:
        with self._lock:
            if self._pid != os.getpid():
                # A forked child (a Salt job, say) inherited the parent's idle
                # sockets: using them would interleave both processes' answers.
                # Closing the child's copies leaves the parent's connections up.
                self._pid = os.getpid()
                idle, self._idle = self._idle, []
                for sock in idle:
                    sock.close()
            return self._idle.pop() if self._idle else None

    def _resolve(self) -> Tuple[int, Any]:
        address = self._address
        if address is None:
            try:  # resolved once: a literal address (the usual endpoint) costs nothing
                found = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)
            except (OSError, ValueError, OverflowError) as exc:  # gaierror; IDNA refusing
                raise self.unreachable(exc) from None
            address = self._address = (found[0][0], found[0][4])
        return address

    def _connect(self, job: Job, deadline: float, timeout: float) -> socket.socket:
        family, address = self._resolve()
        patience = min(CONNECT_PATIENCE, timeout / 2.0)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise IMDSTimeoutError(
                    "could not connect to IMDS at {} within {:g}s ({} {})".format(
                        self.describe(), timeout, job.method, job.path
                    )
                )
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as exc:
                raise self.unreachable(exc) from None
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._bound(sock, socket.SO_SNDTIMEO, min(patience, left))
                sock.connect(address)
                break
            except (socket.timeout, BlockingIOError):
                # A dropped SYN: a fresh one now, same attempt, same deadline.
                sock.close()
                job.resent += 1
            except (OSError, ValueError, OverflowError) as exc:
                sock.close()
                raise self.unreachable(exc) from None
        if self.https:
            return self._handshake(sock, deadline)
        return sock

    def _handshake(self, sock: socket.socket, deadline: float) -> socket.socket:
        import ssl

        try:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            return self._tls.wrap_socket(sock, server_hostname=self.host)  # type: ignore[no-any-return]
        except (OSError, ValueError) as exc:  # ssl.SSLError and socket.timeout are OSErrors
            sock.close()
            raise self.unreachable(exc) from None

    def _exchange(
        self,
        sock: socket.socket,
        job: Job,
        request: bytes,
        deadline: float,
        timeout: float,
        fresh: bool,
    ) -> Response:
        """Send ``request`` and read its answer, every read inside ``deadline``.

        A per-read timeout alone would never end an answer that trickles in
        a byte at a time.
        """
        parser = _Parser(job.method)
        try:
            sock.sendall(request)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("timed out")
                self._bound(sock, socket.SO_RCVTIMEO, left)
                data = sock.recv(65536)
                response = parser.feed(data) if data else parser.eof()
                if response is not None:
                    break
        except (socket.timeout, BlockingIOError):  # BlockingIOError: a kernel timeout
            sock.close()
            raise IMDSTimeoutError(
                "no answer from IMDS at {} within {:g}s ({} {})".format(
                    self.describe(), timeout, job.method, job.path
                )
            ) from None
        except _Malformed as exc:
            sock.close()
            if str(exc) or parser.started:
                raise IMDSUnavailableError(
                    "IMDS at {} sent an unusable answer ({} {}): {}".format(
                        self.describe(), job.method, job.path, exc
                    )
                ) from None
            self._cut(job, fresh, ConnectionResetError(errno.ECONNRESET, "connection closed"))
        except OSError as exc:  # reset, broken pipe; ssl.SSLError
            sock.close()
            if parser.started:
                raise self._dropped(job, exc) from None
            self._cut(job, fresh, exc)
        if parser.keep_alive:
            self._release(sock)
        else:
            sock.close()
        return response

    def _bound(self, sock: socket.socket, option: int, seconds: float) -> None:
        """Let the next connect (``SO_SNDTIMEO``) or reads (``SO_RCVTIMEO``) wait ``seconds``.

        On Linux the kernel enforces it on the blocking socket, which spares
        the poll() Python's own timeouts add before every call (some 25 us a
        request); elsewhere, and under TLS, Python's timeout does it.
        """
        seconds = max(0.001, seconds)
        if self._kernel_timeouts:
            whole = int(seconds)
            micro = int((seconds - whole) * 1e6)
            sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", whole, micro))
        else:
            sock.settimeout(seconds)

    def _cut(self, job: Job, fresh: bool, exc: BaseException) -> NoReturn:
        """The connection ended before any answer: stale if reused, else a connection cap."""
        if not fresh:
            raise _Stale()
        job.throttled = True
        raise self._dropped(job, exc) from None

    def _dropped(self, job: Job, exc: BaseException) -> IMDSError:
        return IMDSUnavailableError(
            "IMDS at {} dropped the connection ({} {}): {}".format(
                self.describe(), job.method, job.path, _reason(exc)
            )
        )

    def _release(self, sock: socket.socket) -> None:
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < MAX_IDLE:
                self._idle.append(sock)
                return
        sock.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()


def _why(exc: BaseException, https: bool) -> str:
    """The cause of a failed connect, and what it most likely means, for one line."""
    import ssl

    if isinstance(exc, ssl.SSLError):
        hint = "IMDS speaks plain HTTP: use an http:// endpoint" if https else NOT_REACHED_HINT
        return "TLS handshake failed: {} ({})".format(exc.reason or type(exc).__name__, hint)
    if isinstance(exc, socket.gaierror):
        reason = "cannot resolve the host name: {}".format(exc.strerror or type(exc).__name__)
    elif isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
    else:  # the IDNA codec refusing a host name, a port out of range
        reason = "invalid host name or port: {}".format(str(exc).split("\n", 1)[0])
    return "{} ({})".format(reason, NOT_REACHED_HINT)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


__all__ = ["IMDSError", "Job", "Response", "StdlibTransport", "Transport"]
