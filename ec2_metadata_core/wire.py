"""A small HTTP/1.1 client for IMDS: many requests in flight from one thread, adaptively.

A full gather is about a hundred tiny requests, and the real service answers
each on a connection of its own (``Connection: close``), caps simultaneous
connections and throttles. So the cost is connects and round trips, and the
danger is a burst. One thread drives every socket with ``selectors``:
connects never block (a SYN the service dropped is abandoned after
``CONNECT_PATIENCE`` and sent again, instead of waiting out the kernel's 1 s
resend while every other request stalls), and the pace follows TCP's
congestion control (``Window``): few requests in flight at first, more
while answers come back clean, half as many at once on a reset, a slow
connect, a 429/503 or a timeout, then a gap between sends if even one at a
time is too many, and a pause as long as any ``Retry-After``. The response
parser reads only what IMDS sends: a status line, a few headers and a body
framed by Content-Length (chunked and read-until-close are handled too).
Connections the service keeps alive are reused.

``exchange`` knows nothing of tokens or retries: ``on_done`` sees every
outcome (``Job.throttled`` says the service cut a connection at its cap) and
may answer with more jobs (a retry after back-off, the paths a listing
revealed), which keeps the whole gather one pipelined pass.
"""

from __future__ import annotations

import errno
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
# Idle kept-alive connections held for reuse (when the service keeps any).
MAX_IDLE = 32
# Requests in flight at the start of an exchange; the window grows from here.
INITIAL_WINDOW = 4
# A connect not done by then met a dropped SYN (a full listen queue, the
# packet cap): send a fresh one rather than wait for the kernel's 1 s resend.
CONNECT_PATIENCE = 0.2
# Signs of congestion closer together than this are one episode.
EPISODE = 0.005
# Least and most time between two sends once one in flight is still too many
# (at most: 50 requests a second, well under what IMDS serves an instance).
MIN_GAP = 0.002
MAX_GAP = 0.02
# Statuses that mean "too much, slow down".
THROTTLE_STATUSES = frozenset((429, 503))


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
    """One request to send, with the caller's bookkeeping riding along.

    After its outcome, ``throttled`` says the service pushed back without an
    answer: a fresh connection cut before any byte came (a connection cap).
    """

    __slots__ = ("headers", "key", "method", "not_before", "path", "throttled", "tries")

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


class Pool:
    """Where to connect (resolved once), and kept-alive sockets shared by every thread."""

    def __init__(self, host: str, port: int, https: bool = False) -> None:
        self.host = host
        self.port = port
        self.https = https
        self._idle: List[socket.socket] = []
        self._lock = threading.Lock()
        self._address: Optional[Tuple[int, Any]] = None
        # The congestion window the last exchange ended with. The next one
        # starts there, as TCP caches a route's window: a long-lived client's
        # repeated small reads (a watcher's polls) then go out in one round.
        self.window = float(INITIAL_WINDOW)
        host_text = "[{}]".format(host) if ":" in host else host
        default_port = 443 if https else 80
        self.host_header = host_text if port == default_port else "{}:{}".format(host_text, port)

    def describe(self) -> str:
        return host_port(self.host, self.port)

    def unreachable(self, exc: BaseException) -> IMDSUnavailableError:
        """The one-line error for whatever connecting raised (refused, DNS, IDNA, TLS)."""
        return IMDSUnavailableError(
            "cannot reach IMDS at {}: {}".format(self.describe(), _why(exc, self.https))
        )

    def idle(self) -> Optional[socket.socket]:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def open(self) -> socket.socket:
        """A non-blocking socket whose connect is under way; raises IMDSUnavailableError."""
        if self._address is None:
            try:  # resolved once: a literal address (the usual endpoint) costs nothing
                found = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)
            except (OSError, ValueError, OverflowError) as exc:  # gaierror; IDNA refusing
                raise self.unreachable(exc) from None
            self._address = (found[0][0], found[0][4])
        family, address = self._address
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            raise self.unreachable(exc) from None
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(address)
        except (OSError, ValueError, OverflowError) as exc:
            sock.close()
            raise self.unreachable(exc) from None
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            sock.close()
            raise self.unreachable(_os_error(code))
        return sock

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


def _os_error(code: int) -> OSError:
    import os

    return OSError(code, os.strerror(code))


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


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


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


class Window:
    """How fast requests may go: TCP's congestion window, then a gap between sends.

    The number in flight grows by one per clean answer up to the threshold
    (slow start), then by one per window's worth. A sign of congestion halves
    it. Once it is down to one, a sign sets a gap between sends instead (a
    rate limit counts requests per second, and one request at a time can
    still exceed it): the pace of the clean answers of the last second, a
    little under, or double the gap when nothing came back clean; clean
    answers close the gap again little by little. Signs count once per
    episode: not from a request sent before the last cut, nor within a round
    trip (at least ``EPISODE``) of it. A ``Retry-After`` holds every send
    back that long.
    """

    def __init__(self, limit: int, start: float = INITIAL_WINDOW) -> None:
        self.limit = max(1, limit)
        self.size = float(max(1.0, min(start, self.limit)))
        self.threshold = float(self.limit)
        self.gap = 0.0
        self.cut_at = -1.0
        self.calm_at = 0.0
        self.next_send = 0.0  # monotonic time the gap or a Retry-After allows
        self.started = time.monotonic()
        self.cleans: Deque[float] = deque()  # times of the clean answers of the last second

    def allows(self, in_flight: int, now: float) -> bool:
        return in_flight < int(self.size) and now >= self.next_send

    def sent(self, now: float) -> None:
        if self.gap:
            self.next_send = max(self.next_send, now + self.gap)

    def clean(self, now: float) -> None:
        cleans = self.cleans
        cleans.append(now)
        while cleans[0] < now - 1.0:
            cleans.popleft()
        if self.gap:
            # About 3% faster an answer: back to the pace before the cut
            # after some twenty clean answers.
            self.gap = 0.0 if self.gap < MIN_GAP else self.gap * 0.97
            return
        if self.size < self.threshold:
            self.size += 1.0
        else:
            self.size += 1.0 / self.size
        self.size = min(self.size, float(self.limit))

    def congested(self, began: float, now: float, retry_after: Optional[float]) -> None:
        if retry_after is not None:
            self.next_send = max(self.next_send, now + retry_after)
        if began < self.cut_at or now < self.calm_at:
            return  # the same episode
        self.cut_at = now
        self.calm_at = now + max(EPISODE, now - began)
        if self.size >= 2.0:
            self.threshold = max(1.0, self.size / 2.0)
            self.size = self.threshold
            return
        cleans = self.cleans
        while cleans and cleans[0] < now - 1.0:
            cleans.popleft()
        if cleans:
            span = max(0.05, min(1.0, now - self.started))
            gap = 1.1 * span / len(cleans)
        else:
            gap = self.gap * 2.0
        self.gap = min(MAX_GAP, max(MIN_GAP, gap))
        self.next_send = max(self.next_send, now + self.gap)


# Flight states: what the socket waits for.
_CONNECTING, _HANDSHAKE, _SENDING, _RECEIVING = range(4)


class _InFlight:
    __slots__ = (
        "began",
        "connect_by",
        "deadline",
        "job",
        "out",
        "parser",
        "reused",
        "sock",
        "state",
    )

    def __init__(self, job: Job, began: float, deadline: float) -> None:
        self.job = job
        self.began = began
        self.deadline = deadline
        self.sock: Any = None
        self.reused = False
        self.state = _CONNECTING
        self.connect_by = 0.0
        self.out = b""
        self.parser = _Parser(job.method)


def exchange(
    pool: Pool,
    jobs: Iterable[Job],
    timeout: float,
    limit: int,
    on_done: OnDone,
    prepare: Optional[Prepare] = None,
) -> None:
    """Run ``jobs``, at most ``limit`` in flight (fewer while congested); ``on_done`` may add more.

    Every job ends in exactly one ``on_done`` call, with a ``Response`` or an
    ``IMDSError``. ``timeout`` covers one attempt: connect (however many SYNs
    it takes), send and answer. A kept-alive socket found closed before any
    answer is replaced by a fresh one, without counting as an outcome.
    ``prepare(job)``, if given, runs just before each send.
    """
    ready: Deque[Job] = deque()
    later: List[Tuple[float, int, Job]] = []
    order = 0
    active: Dict[int, _InFlight] = {}
    selector = selectors.DefaultSelector()
    window = Window(limit, pool.window)
    patience = min(CONNECT_PATIENCE, timeout / 2.0)

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

    def watch(flight: _InFlight, events: int) -> None:
        fd = flight.sock.fileno()
        if fd in active:
            selector.modify(flight.sock, events, flight)
        else:
            active[fd] = flight
            selector.register(flight.sock, events, flight)

    def forget(flight: _InFlight) -> None:
        fd = flight.sock.fileno()
        if active.get(fd) is flight:
            selector.unregister(flight.sock)
            del active[fd]

    def start(job: Job) -> None:
        job.throttled = False
        if prepare is not None:
            try:
                prepare(job)
            except IMDSError as exc:
                finish(job, exc)
                return
        now = time.monotonic()
        window.sent(now)
        flight = _InFlight(job, now, now + timeout)
        flight.out = encode(pool, job)
        sock = pool.idle()
        if sock is not None:
            flight.sock, flight.reused, flight.state = sock, True, _SENDING
            send(flight)
        else:
            connect(flight)

    def connect(flight: _InFlight) -> None:
        try:
            flight.sock = pool.open()
        except IMDSError as exc:
            finish(flight.job, exc)
            return
        flight.reused, flight.state = False, _CONNECTING
        flight.connect_by = time.monotonic() + patience
        watch(flight, selectors.EVENT_WRITE)

    def connected(flight: _InFlight) -> None:
        code = flight.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            window.congested(flight.began, time.monotonic(), None)
            settle(flight, pool.unreachable(_os_error(code)), False)
            return
        if pool.https:
            import ssl

            forget(flight)  # wrapping detaches the plain socket from its descriptor
            try:
                context = ssl.create_default_context()
                tls = context.wrap_socket(
                    flight.sock, server_hostname=pool.host, do_handshake_on_connect=False
                )
            except (OSError, ValueError) as exc:
                settle(flight, pool.unreachable(exc), False)
                return
            flight.sock, flight.state = tls, _HANDSHAKE
            handshake(flight)
            return
        flight.state = _SENDING
        send(flight)

    def handshake(flight: _InFlight) -> None:
        import ssl

        try:
            flight.sock.do_handshake()
        except ssl.SSLWantReadError:
            watch(flight, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            watch(flight, selectors.EVENT_WRITE)
            return
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            settle(flight, pool.unreachable(exc), False)
            return
        flight.state = _SENDING
        send(flight)

    def send(flight: _InFlight) -> None:
        try:
            sent = flight.sock.send(flight.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            lost(flight, exc)
            return
        flight.out = flight.out[sent:]
        if flight.out:
            watch(flight, selectors.EVENT_WRITE)
            return
        flight.state = _RECEIVING
        watch(flight, selectors.EVENT_READ)

    def lost(flight: _InFlight, exc: BaseException) -> None:
        """The connection broke before or while the answer came."""
        if flight.reused and not flight.parser.started:
            # A kept-alive socket the service had closed: try a fresh one.
            settle(flight, None, False)
            pool.close()  # its idle siblings are as stale as it was
            flight.parser = _Parser(flight.job.method)
            flight.out = encode(pool, flight.job)
            connect(flight)
            return
        if not flight.parser.started:
            # Cut before any answer on a fresh connection: a connection cap.
            flight.job.throttled = True
            window.congested(flight.began, time.monotonic(), None)
        settle(flight, _broken(pool, flight.job, exc), False)

    def settle(flight: _InFlight, outcome: Optional[Outcome], keep: bool) -> None:
        if flight.sock is not None:
            forget(flight)
            if keep:
                pool.release(flight.sock)
            else:
                flight.sock.close()
        if outcome is not None:
            finish(flight.job, outcome)

    def answered(flight: _InFlight, response: Response, keep: bool) -> None:
        if response.status in THROTTLE_STATUSES:
            pause = retry_after(response.headers.get("retry-after"))
            window.congested(flight.began, time.monotonic(), pause)
        elif response.status < 500:
            window.clean(time.monotonic())
        settle(flight, response, keep)

    def receive(flight: _InFlight) -> None:
        sock = flight.sock
        try:
            data = sock.recv(65536)
            while data and getattr(sock, "pending", lambda: 0)():
                data += sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if type(exc).__name__ in ("SSLWantReadError", "SSLWantWriteError"):
                return
            lost(flight, exc)
            return
        try:
            if not data:
                if flight.reused and not flight.parser.started:
                    lost(flight, ConnectionResetError(errno.ECONNRESET, "closed"))
                    return
                answered(flight, flight.parser.eof(), False)
                return
            response = flight.parser.feed(data)
        except _Malformed as exc:
            if not str(exc) and not flight.parser.started:
                lost(flight, ConnectionResetError(errno.ECONNRESET, "connection closed"))
                return
            settle(flight, _garbled(pool, flight.job, str(exc)), False)
            return
        if response is not None:
            answered(flight, response, flight.parser.keep_alive)

    def ready_to(flight: _InFlight) -> None:
        state = flight.state
        if state == _CONNECTING:
            connected(flight)
        elif state == _HANDSHAKE:
            handshake(flight)
        elif state == _SENDING:
            send(flight)
        else:
            receive(flight)

    def overdue(now: float) -> None:
        for flight in list(active.values()):
            if flight.deadline <= now:
                window.congested(flight.began, now, None)
                settle(flight, _timed_out(pool, flight, timeout), False)
            elif flight.state == _CONNECTING and flight.connect_by <= now:
                # A dropped SYN: cut, tell the window, send a fresh SYN at once
                # (same attempt, same deadline).
                window.congested(flight.began, now, None)
                settle(flight, None, False)
                connect(flight)

    try:
        enqueue(jobs)
        while ready or later or active:
            now = time.monotonic()
            while later and later[0][0] <= now:
                ready.append(heapq.heappop(later)[2])
            while ready and window.allows(len(active), now):
                start(ready.popleft())
                now = time.monotonic()
            wake = now + 3600.0
            if active:
                wake = min(
                    min(f.deadline for f in active.values()),
                    min(
                        (f.connect_by for f in active.values() if f.state == _CONNECTING),
                        default=wake,
                    ),
                )
            if later:
                wake = min(wake, later[0][0])
            if ready and len(active) < int(window.size):
                wake = min(wake, window.next_send)
            if not active:
                if ready or later:  # else the last outcome came without a socket: done
                    time.sleep(max(0.0, wake - time.monotonic()))
                continue
            for key, _events in selector.select(max(0.0, wake - time.monotonic())):
                woken: _InFlight = key.data
                if active.get(woken.sock.fileno()) is woken:
                    ready_to(woken)
            overdue(time.monotonic())
    finally:
        pool.window = window.size
        for left in list(active.values()):
            left.sock.close()
        selector.close()


def retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` in seconds (delta form; an HTTP date is taken as 1 s), at most 60."""
    if value is None:
        return None
    value = value.strip()
    if _DIGITS.match(value):
        return min(60.0, float(int(value)))
    return 1.0 if value else None


def _broken(pool: Pool, job: Job, exc: BaseException) -> IMDSError:
    return IMDSUnavailableError(
        "IMDS at {} dropped the connection ({} {}): {}".format(
            pool.describe(), job.method, job.path, _reason(exc)
        )
    )


def _garbled(pool: Pool, job: Job, why: str) -> IMDSError:
    return IMDSUnavailableError(
        "IMDS at {} sent an unusable answer ({} {}): {}".format(
            pool.describe(), job.method, job.path, why or "connection closed"
        )
    )


def _timed_out(pool: Pool, flight: _InFlight, timeout: float) -> IMDSError:
    job = flight.job
    if flight.state == _CONNECTING:
        return IMDSTimeoutError(
            "could not connect to IMDS at {} within {:g}s ({} {})".format(
                pool.describe(), timeout, job.method, job.path
            )
        )
    return IMDSTimeoutError(
        "no answer from IMDS at {} within {:g}s ({} {})".format(
            pool.describe(), timeout, job.method, job.path
        )
    )
