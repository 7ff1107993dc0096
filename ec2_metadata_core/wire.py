"""A small HTTP/1.1 client for IMDS: kept-alive sockets, many requests in flight, one thread.

A full gather is about a hundred tiny requests, so its cost is round trips and
per-request overhead. ``http.client`` parses every header block with the
``email`` package and needs a thread per request in flight, and threads
fighting over the GIL cost more CPU than the requests themselves. Here one
thread drives up to N sockets with ``selectors``, and the response parser
reads only what IMDS sends: a status line, a few headers and a body framed by
Content-Length (chunked and read-until-close are handled too).

``exchange`` knows nothing of tokens or retries: ``on_done`` sees every
outcome and may answer with more jobs (a retry after back-off, the paths a
listing revealed), which keeps the whole gather one pipelined pass.
"""

from __future__ import annotations

import heapq
import re
import selectors
import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, List, NamedTuple, Optional, Tuple, Union
from urllib.parse import quote

from .config import host_port
from .errors import IMDSError, IMDSTimeoutError, IMDSUnavailableError

USER_AGENT = "ec2-metadata-core"
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
# What a refused connection most likely means, said where it happens.
NOT_REACHED_HINT = "not on EC2, or the metadata endpoint is wrong or turned off"
# Idle kept-alive connections held for reuse: above the default concurrency,
# so a full gather never reconnects.
MAX_IDLE = 32


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
    """One request to send, with the caller's bookkeeping riding along."""

    __slots__ = ("headers", "key", "method", "not_before", "path", "tries")

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


Outcome = Union[Response, IMDSError]
OnDone = Callable[[Job, Outcome], Iterable[Job]]
# Called as a job leaves (it may have queued a while): may update its headers,
# or raise an IMDSError that becomes the job's outcome.
Prepare = Callable[[Job], None]


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


def connect(host: str, port: int, https: bool, timeout: float, where: str) -> socket.socket:
    """A connected socket (TLS-wrapped for https), or the one-line error saying why not.

    Whatever connecting can raise (refused, unreachable, DNS, a name the IDNA
    codec rejects, a TLS handshake with a plain-HTTP server) ends as an
    ``IMDSUnavailableError``, a timeout as an ``IMDSTimeoutError``.
    """
    sock: Optional[socket.socket] = None
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if https:
            import ssl

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        return sock
    except socket.timeout:
        error: IMDSError = IMDSTimeoutError(
            "could not connect to IMDS at {} within {:g}s".format(where, timeout)
        )
    except (OSError, ValueError, OverflowError) as exc:  # UnicodeError: IDNA refused the name
        error = IMDSUnavailableError("cannot reach IMDS at {}: {}".format(where, _why(exc, https)))
    if sock is not None:
        sock.close()
    raise error


def _why(exc: BaseException, https: bool) -> str:
    """The cause of a failed connect, and what it most likely means, for one line."""
    import ssl

    if isinstance(exc, ssl.SSLError):
        hint = "IMDS speaks plain HTTP: use an http:// endpoint" if https else NOT_REACHED_HINT
        return "TLS handshake failed: {} ({})".format(exc.reason or type(exc).__name__, hint)
    if isinstance(exc, socket.gaierror):
        reason = "cannot resolve the host name: {}".format(exc.strerror or type(exc).__name__)
    elif isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
    else:  # the IDNA codec refusing a host name, a port out of range
        reason = "invalid host name or port: {}".format(str(exc).split("\n", 1)[0])
    return "{} ({})".format(reason, NOT_REACHED_HINT)


class Pool:
    """Kept-alive sockets to one host, shared by every thread."""

    def __init__(self, host: str, port: int, https: bool = False) -> None:
        self.host = host
        self.port = port
        self.https = https
        self._idle: List[socket.socket] = []
        self._lock = threading.Lock()
        host_text = "[{}]".format(host) if ":" in host else host
        default_port = 443 if https else 80
        self.host_header = host_text if port == default_port else "{}:{}".format(host_text, port)
        self.connections_opened = 0

    def describe(self) -> str:
        return host_port(self.host, self.port)

    def acquire(self, timeout: float) -> Tuple[socket.socket, bool]:
        """A socket and whether it was reused (a reused one may have gone stale)."""
        with self._lock:
            if self._idle:
                sock = self._idle.pop()
                sock.settimeout(timeout)
                return sock, True
        sock = connect(self.host, self.port, self.https, timeout, self.describe())
        with self._lock:
            self.connections_opened += 1
        return sock, False

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(sock)
                return
        sock.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()


# Path characters sent as they are: visible ASCII. Anything else (a space, a
# line break, non-ASCII from a listing entry) is percent-encoded, so no name
# IMDS lists can break the request line; '%' stays, for paths already quoted.
_PATH_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))
_PATH_UNSAFE = re.compile(r"[^\x21-\x7e]")


def encode(pool: Pool, job: Job) -> bytes:
    path = job.path
    if _PATH_UNSAFE.search(path):  # rare: spare every other request quote()'s cost
        path = quote(path, safe=_PATH_SAFE)
    lines = [
        "{} {} HTTP/1.1".format(job.method, path),
        "Host: " + pool.host_header,
        "User-Agent: " + USER_AGENT,
        "Accept: */*",
    ]
    lines.extend("{}: {}".format(k, v) for k, v in job.headers.items())
    if job.method in ("PUT", "POST"):
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _InFlight:
    __slots__ = ("deadline", "job", "parser", "reused", "sock")

    def __init__(self, job: Job, sock: socket.socket, reused: bool, deadline: float) -> None:
        self.job = job
        self.sock = sock
        self.reused = reused
        self.deadline = deadline
        self.parser = _Parser(job.method)


def exchange(
    pool: Pool,
    jobs: Iterable[Job],
    timeout: float,
    limit: int,
    on_done: OnDone,
    prepare: Optional[Prepare] = None,
) -> None:
    """Run ``jobs`` with at most ``limit`` in flight; ``on_done`` may add more.

    Every job ends in exactly one ``on_done`` call, with a ``Response`` or an
    ``IMDSError``. A kept-alive socket found closed before any answer is
    replaced by a fresh one, once, without counting as an outcome.
    ``prepare(job)``, if given, runs just before each send.
    """
    ready: Deque[Job] = deque()
    later: List[Tuple[float, int, Job]] = []
    order = 0
    active: Dict[int, _InFlight] = {}
    selector = selectors.DefaultSelector()

    def enqueue(new: Iterable[Job], first: bool = False) -> None:
        nonlocal order
        now_ready = []
        for job in new:
            if job.not_before > time.monotonic():
                order += 1
                heapq.heappush(later, (job.not_before, order, job))
            else:
                now_ready.append(job)
        if first:
            ready.extendleft(reversed(now_ready))
        else:
            ready.extend(now_ready)

    def finish(job: Job, outcome: Outcome) -> None:
        # What an answer reveals goes ahead of the queue: dependent reads
        # (a listing's entries) are the critical path of a gather.
        enqueue(on_done(job, outcome), first=True)

    def start(job: Job, fresh_only: bool = False) -> None:
        if prepare is not None:
            try:
                prepare(job)
            except IMDSError as exc:
                finish(job, exc)
                return
        # The timeout covers connect, send and answer together.
        began = time.monotonic()
        try:
            if fresh_only:
                sock, reused = _fresh(pool, timeout), False
            else:
                sock, reused = pool.acquire(timeout)
        except IMDSError as exc:
            finish(job, exc)
            return
        try:
            sock.sendall(encode(pool, job))
        except OSError as exc:
            sock.close()
            if reused:
                pool.close()  # its idle siblings are as stale as it was
                start(job, fresh_only=True)
            else:
                finish(job, _broken(pool, job, exc))
            return
        flight = _InFlight(job, sock, reused, began + timeout)
        active[sock.fileno()] = flight
        selector.register(sock, selectors.EVENT_READ, flight)

    def settle(flight: _InFlight, outcome: Optional[Outcome], keep: bool) -> None:
        selector.unregister(flight.sock)
        del active[flight.sock.fileno()]
        if keep:
            pool.release(flight.sock)
        else:
            flight.sock.close()
        if outcome is not None:
            finish(flight.job, outcome)

    def receive(flight: _InFlight) -> None:
        sock = flight.sock
        try:
            data = sock.recv(65536)
            while data and getattr(sock, "pending", lambda: 0)():
                data += sock.recv(65536)
        except socket.timeout:
            return  # spurious wake-up; the deadline check handles real silence
        except OSError as exc:
            if flight.reused and not flight.parser.started:
                settle(flight, None, False)
                pool.close()
                start(flight.job, fresh_only=True)
            else:
                settle(flight, _broken(pool, flight.job, exc), False)
            return
        try:
            if not data:
                if flight.reused and not flight.parser.started:
                    settle(flight, None, False)
                    pool.close()
                    start(flight.job, fresh_only=True)
                    return
                settle(flight, flight.parser.eof(), False)
                return
            response = flight.parser.feed(data)
        except _Malformed as exc:
            settle(flight, _garbled(pool, flight.job, str(exc)), False)
            return
        if response is not None:
            settle(flight, response, flight.parser.keep_alive)

    try:
        enqueue(jobs)
        while ready or later or active:
            now = time.monotonic()
            while later and later[0][0] <= now:
                ready.append(heapq.heappop(later)[2])
            while ready and len(active) < limit:
                start(ready.popleft())
            if not active:
                if later and not ready:
                    time.sleep(max(0.0, later[0][0] - time.monotonic()))
                continue
            wake = min(f.deadline for f in active.values())
            if later:
                wake = min(wake, later[0][0])
            for key, _events in selector.select(max(0.0, wake - time.monotonic())):
                receive(key.data)
            now = time.monotonic()
            for flight in [f for f in active.values() if f.deadline <= now]:
                settle(flight, _timed_out(pool, flight.job, timeout), False)
    finally:
        for flight in list(active.values()):
            flight.sock.close()
        selector.close()


def _fresh(pool: Pool, timeout: float) -> socket.socket:
    pool.close()
    sock = pool.acquire(timeout)[0]
    return sock


def _broken(pool: Pool, job: Job, exc: BaseException) -> IMDSError:
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    return IMDSUnavailableError(
        "IMDS at {} dropped the connection ({} {}): {}".format(
            pool.describe(), job.method, job.path, reason
        )
    )


def _garbled(pool: Pool, job: Job, why: str) -> IMDSError:
    return IMDSUnavailableError(
        "IMDS at {} sent an unusable answer ({} {}): {}".format(
            pool.describe(), job.method, job.path, why or "connection closed"
        )
    )


def _timed_out(pool: Pool, job: Job, timeout: float) -> IMDSError:
    return IMDSTimeoutError(
        "no answer from IMDS at {} within {:g}s ({} {})".format(
            pool.describe(), timeout, job.method, job.path
        )
    )
