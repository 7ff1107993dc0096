"""A local IMDSv2 server, so playbooks, states and tests can run off EC2.

It speaks the token protocol, serves an instance data tree, and can misbehave
on purpose (latency, throttling, resets, truncation, silence) so clients can be
tested against the failures they will meet on real instances.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import copy
import email.utils
import fnmatch
import http
import random
import re
import secrets
import selectors
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Type, Union
from urllib.parse import unquote, urlsplit

from .control import PREFIX as CONTROL_PREFIX
from .control import NoticeControls
from .instance import (
    Directory,
    InstanceSource,
    Leaf,
    Node,
    compile_node,
    compile_top,
    load,
    split_data_path,
)
from .signing import IdentitySigner, default_signer, sign_tree

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER_KEY = TTL_HEADER.lower()
TOKEN_HEADER_KEY = TOKEN_HEADER.lower()
MAX_TOKEN_TTL = 21600
FAULT_ACTIONS = ("reset", "delay", "truncate", "silent")
OVER_CAPACITY_ACTIONS = ("reset", "refuse")
THROTTLE_ACTIONS = ("429", "503", "drop")
# Characters a URL path carries as they are (RFC 3986 pchar): a name made only
# of these is matched literally, never through its percent-encoded form.
_LITERAL = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]*\Z")

_TTL_RE = re.compile(r"[0-9]{1,9}")
_MAX_BODY = 1 << 20
_TRUNCATE_EXTRA = 64

_IDENTITY_DOCUMENT = ["dynamic", "instance-identity", "document"]


@dataclass
class Fault:
    """A scripted misbehaviour for requests matching ``method`` and ``path``.

    ``path`` is an exact path or an fnmatch glob, compared with both the raw and
    the percent-decoded request path (query string excluded); one that starts
    with neither ``/`` nor ``*`` is under ``/latest/`` (``meta-data/mac`` is
    ``/latest/meta-data/mac``), as the paths of ``set`` and ``delete`` are. Of every
    ``every`` matching requests the last ``k`` are hit (``every=5``: the 5th,
    10th, ...; ``every=30, k=10``: 21st to 30th, 51st to 60th, ...), and each
    of those only with probability ``chance`` (seeded by the simulator's
    ``seed``). ``times=None`` means forever, N means at most N hits; ``seen``
    counts matching requests, ``hits`` the ones the fault hit. With ``status``
    (or ``body``) the answer is replaced; ``delay`` answers late; ``action`` is
    one of ``reset``, ``delay``, ``truncate``, ``silent``.
    """

    path: str = "*"
    method: Optional[str] = None
    status: Optional[int] = None
    action: Optional[str] = None
    delay: float = 0.0
    body: Union[bytes, str, None] = None
    headers: Optional[Dict[str, str]] = None
    times: Optional[int] = None
    every: int = 1
    k: int = 1
    chance: float = 1.0
    hits: int = field(default=0, compare=False)
    seen: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.action is not None and self.action not in FAULT_ACTIONS:
            raise ValueError(f"Fault.action must be one of {', '.join(FAULT_ACTIONS)} or None")
        if self.delay < 0:
            raise ValueError("Fault.delay must be >= 0")
        if self.action == "delay" and self.delay <= 0:
            raise ValueError("Fault(action='delay') needs delay > 0 (seconds)")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("Fault.status must be an HTTP status code (100..599)")
        if self.times is not None and self.times < 0:
            raise ValueError("Fault.times must be None (forever) or >= 0")
        if self.every < 1 or not 1 <= self.k <= self.every:
            raise ValueError("Fault.every must be >= 1 and Fault.k between 1 and every")
        if not 0.0 < self.chance <= 1.0:
            raise ValueError("Fault.chance must be in (0, 1]")
        if self.method is not None:
            self.method = self.method.upper()
        if not isinstance(self.path, str):
            raise ValueError("Fault.path must be a string (a path or a glob)")
        if not self.path.startswith(("/", "*")):
            self.path = "/latest/" + self.path

    @property
    def active(self) -> bool:
        return self.times is None or self.hits < self.times

    def strikes(self, rng: random.Random) -> bool:
        """Count one matching request; True if the fault hits it (caller holds the lock)."""
        self.seen += 1
        if (self.seen - 1) % self.every < self.every - self.k:
            return False
        if self.chance < 1.0 and rng.random() >= self.chance:
            return False
        self.hits += 1
        return True

    def matches(self, method: str, path: str, raw_path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return fnmatch.fnmatchcase(path, self.path) or fnmatch.fnmatchcase(raw_path, self.path)


@dataclass
class Stats:
    """Request counters.

    ``server_time`` is wall-clock seconds spent handling requests (including
    configured latency and delays, and, for an in-process client, waits for the
    GIL); ``server_cpu_time`` is the CPU the simulator itself used, the fair
    figure to subtract in benchmarks. Counters are updated before an answer is
    written; the two times just after.
    """

    requests: int = 0
    token_requests: int = 0
    connections: int = 0
    # Connections cut at accept because max_connections were open, and
    # requests turned away by the rate limit.
    over_capacity: int = 0
    throttled: int = 0
    peak_connections: int = 0
    by_path: collections.Counter[str] = field(default_factory=collections.Counter)
    by_status: collections.Counter[int] = field(default_factory=collections.Counter)
    server_time: float = 0.0
    server_cpu_time: float = 0.0


class _Reply:
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


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_ERROR_PAGES: Dict[int, bytes] = {}


def _error_page(status: int) -> bytes:
    """The XHTML page real IMDS sends with errors: clients must not mistake it for a value."""
    page = _ERROR_PAGES.get(status)
    if page is None:
        title = f"{status} - {_phrase(status)}"
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


def _error(status: int, headers: Optional[Dict[str, str]] = None) -> _Reply:
    return _Reply(status, _error_page(status), "text/html", headers)


_DATE_CACHE: List[Any] = [0, ""]


def _http_date() -> str:
    """Date header, formatted once a second (formatting is a visible share of a request)."""
    now = int(time.time())
    if _DATE_CACHE[0] != now:
        _DATE_CACHE[1] = email.utils.formatdate(now, usegmt=True)
        _DATE_CACHE[0] = now
    return str(_DATE_CACHE[1])


class _BadRequest(Exception):
    pass


class _Handler(socketserver.StreamRequestHandler):
    """One keep-alive connection; all decisions are delegated to the Simulator.

    Parses requests itself: http.server's email-based header parser costs more
    than everything else a request does here.
    """

    disable_nagle_algorithm = True
    timeout = 300  # reap idle keep-alive connections eventually
    server: _IMDSServer
    close_connection = True
    command = ""
    path = ""
    requestline = ""
    fields: Dict[str, str]

    def handle(self) -> None:
        self.close_connection = False
        while not self.close_connection:
            self.handle_one_request()

    def handle_one_request(self) -> None:
        try:
            if not self._read_request():
                self.close_connection = True
                return
        except _BadRequest:
            self.close_connection = True
            self.send_reply(_error(400), head_only=False)
            return
        except OSError:  # idle timeout, reset by peer, or stop() shutting us down
            self.close_connection = True
            return
        self.server.simulator._handle(self)

    def _read_request(self) -> bool:
        """Read request line, headers and body; False when the peer closed."""
        rfile = self.rfile
        line = rfile.readline(8193)
        if not line:
            return False
        if len(line) > 8192:
            raise _BadRequest()
        self.requestline = line.decode("latin-1").rstrip("\r\n")
        parts = self.requestline.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest()
        self.command, self.path, version = parts
        fields: Dict[str, str] = {}
        for _ in range(101):
            line = rfile.readline(8193)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                return False
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or len(line) > 8192:
                raise _BadRequest()
            fields[name.strip().lower()] = value.strip()
        else:
            raise _BadRequest()
        self.fields = fields
        connection = fields.get("connection", "").lower()
        if not self.server.simulator.keep_alive:
            self.close_connection = True  # the real service: one request per connection
        elif version == "HTTP/1.0":
            self.close_connection = "keep-alive" not in connection
        else:
            self.close_connection = "close" in connection
        if fields.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "transfer-encoding" in fields:
            self.close_connection = True  # not worth decoding chunks: answer, then close
            return True
        raw = fields.get("content-length")
        if raw is not None:
            if not raw.isdigit() or int(raw) > _MAX_BODY:
                raise _BadRequest()
            if int(raw):
                rfile.read(int(raw))  # keep the connection in sync for the next request
        return True

    def send_reply(self, reply: _Reply, head_only: bool, truncate: bool = False) -> None:
        body = reply.body
        length = len(body) + (_TRUNCATE_EXTRA if truncate else 0)
        if truncate:
            self.close_connection = True
        version = "HTTP/1.0" if self.server.simulator.http10 else "HTTP/1.1"
        lines = [
            f"{version} {reply.status} {_phrase(reply.status)}",
            f"Date: {_http_date()}",
            "Server: EC2ws",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {length}",
            "Accept-Ranges: none",
        ]
        lines.extend(f"{name}: {value}" for name, value in reply.headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        lines.append("\r\n")
        payload = "\r\n".join(lines).encode("latin-1")
        if not head_only:
            payload += body
        if self.close_connection:
            # Its last answer: the connection no longer counts against
            # max_connections once the answer leaves, as a client sees it.
            self.server.release(self.connection)
        # One write: headers and body in separate segments would meet Nagle/delayed-ACK.
        self.wfile.write(payload)
        self._log_verbose(f"{reply.status} {len(body)}")

    def drop(self) -> None:
        """Leave this request unanswered; keep reading so the client simply times out."""
        self.close_connection = False
        self._log_verbose("(no answer)")

    def reset(self) -> None:
        self.server.mark_reset(self.connection)
        self.close_connection = True
        self._log_verbose("(connection reset)")

    def abandon(self) -> None:
        self.close_connection = True

    def _log_verbose(self, outcome: str) -> None:
        if self.server.simulator.verbose:
            stamp = time.strftime("%H:%M:%S")
            sys.stderr.write(f'{self.client_address[0]} [{stamp}] "{self.requestline}" {outcome}\n')


class _IMDSServer(ThreadingHTTPServer):
    """Tracks its connections so stop() can cut idle and hung ones immediately."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], simulator: Simulator, family: int) -> None:
        self.address_family = socket.AddressFamily(family)
        self.simulator = simulator
        self.request_queue_size = simulator.listen_queue
        self._conn_lock = threading.Lock()
        self._conns: Dict[socket.socket, threading.Thread] = {}
        self._open: Set[socket.socket] = set()  # counted against max_connections
        self._to_reset: Set[socket.socket] = set()
        self._closing = False
        self._wake_r, self._wake_w = socket.socketpair()
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._wake_r.close()
            self._wake_w.close()
            raise

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Like socketserver's loop, but woken by shutdown() instead of polling.

        Polling would cost every stop() up to ``poll_interval``, and test suites
        stop a simulator per test.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closing:
                ready = selector.select()
                if self._closing:
                    break
                if any(key.fileobj is self.socket for key, _ in ready):
                    self._accept_one()

    def _accept_one(self) -> None:
        try:
            request, client_address = self.get_request()
        except OSError:
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def shutdown(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call getfqdn(), a reverse DNS lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        sim = self.simulator
        cap = sim.max_connections
        with self._conn_lock:
            over = cap is not None and len(self._open) >= cap
            if not over:
                self._open.add(request)
                opened = len(self._open)
        if over:
            sim._count_connection(over_capacity=True)
            if sim.over_capacity == "refuse":
                # Cut before reading a byte: the nearest a listener gets to refusing.
                self._reset_now(request)
                return
            # "reset": read the request, then cut the connection.
            thread = threading.Thread(
                target=self._reset_after_request, args=(request,), daemon=True
            )
            thread.start()
            return
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="imds-simulator-conn",
            daemon=True,
        )
        with self._conn_lock:
            self._conns[request] = thread
        sim._count_connection(opened=opened)
        thread.start()

    def _reset_after_request(self, request: socket.socket) -> None:
        with contextlib.suppress(OSError):
            request.settimeout(1.0)
            request.recv(65536)
        self._reset_now(request)

    @staticmethod
    def _reset_now(request: socket.socket) -> None:
        with contextlib.suppress(OSError):  # linger 0: close() sends RST instead of FIN
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.close()

    def release(self, sock: socket.socket) -> None:
        with self._conn_lock:
            self._open.discard(sock)

    def mark_reset(self, sock: socket.socket) -> None:
        with self._conn_lock:
            self._to_reset.add(sock)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._conns.pop(request, None)
            self._open.discard(request)
            reset = request in self._to_reset
            self._to_reset.discard(request)
        if not reset:
            super().shutdown_request(request)
            return
        self._reset_now(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and not self.simulator.verbose:
            return  # clients hanging up mid-answer are expected in fault tests
        traceback.print_exc()

    def close_all(self, timeout: float) -> None:
        with self._conn_lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in conns:
            thread.join(max(0.0, deadline - time.monotonic()))


# Constructor arguments that may also change while the simulator runs.
_LIVE_KNOBS = frozenset(
    (
        "latency",
        "token_ttl_cap",
        "tags_enabled",
        "imdsv1",
        "silent",
        "error_rate",
        "error_statuses",
        "verbose",
        "listen_queue",
        "max_connections",
        "over_capacity",
        "rate_limit",
        "rate_burst",
        "throttle",
        "keep_alive",
        "http10",
        "vanishing_tag",
    )
)


class Simulator(NoticeControls):
    """An IMDSv2 endpoint on loopback whose data and failure modes can change live.

    All knobs are plain attributes or validated properties and may be changed
    while it runs; each request reads them once.

    By default it behaves like the real service on the wire (``docs/imds.md``,
    "On the wire"): every answer carries ``Connection: close`` and the
    connection ends with it, and paths are taken literally (a name made of
    legal path characters is found only as it is, ``aws%3Aname`` is not
    ``aws:name``). Knobs make it as strict as a busy instance:

    * ``listen_queue``: the listen backlog (the kernel drops SYNs beyond it;
      the client's kernel resends them after 1 s);
    * ``max_connections`` with ``over_capacity`` ``"reset"`` (read the
      request, then cut) or ``"refuse"`` (cut at accept): a cap on
      simultaneous connections;
    * ``rate_limit`` requests/s with ``rate_burst`` depth (a token bucket;
      default depth = one second's worth) and ``throttle`` ``"429"``,
      ``"503"`` or ``"drop"`` (never answered) beyond it;
    * ``keep_alive``: serve many requests a connection (off by default);
    * ``http10``: ``HTTP/1.0`` status lines;
    * ``vanishing_tag``: a tag key the tags listing names whose own path then
      answers 404 (removed between listing and read);
    * ``faults`` (see ``Fault``): scripted answers, every Nth, K of every N,
      or a fraction of requests.

    ``signer`` signs the identity document's ``signature`` and ``rsa2048``
    (``signing.py``): the process's shared key by default, so one
    ``signer.certificate_pem`` verifies every simulator of a test run.
    """

    def __init__(
        self,
        instance: InstanceSource = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        token_ttl_cap: Optional[int] = None,
        tags_enabled: bool = True,
        imdsv1: bool = False,
        silent: bool = False,
        error_rate: float = 0.0,
        error_statuses: Sequence[int] = (500,),
        seed: Optional[int] = None,
        faults: Optional[List[Fault]] = None,
        verbose: bool = False,
        listen_queue: int = 128,
        max_connections: Optional[int] = None,
        over_capacity: str = "reset",
        rate_limit: Optional[float] = None,
        rate_burst: Optional[float] = None,
        throttle: str = "503",
        keep_alive: bool = False,
        http10: bool = False,
        vanishing_tag: Optional[str] = None,
        signer: Union[IdentitySigner, bool, None] = True,
    ) -> None:
        self._data_lock = threading.Lock()
        self._lock = threading.Lock()
        _, self._root = load(instance)
        # Identity documents are signed with the process's shared key (True),
        # a given IdentitySigner, or not at all (None/False: the data file's values).
        self.signer = default_signer() if signer is True else (signer or None)
        sign_tree(self._root, self.signer)
        self.host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        self.port = port
        self.latency = latency
        self.token_ttl_cap = token_ttl_cap
        self.tags_enabled = tags_enabled
        self.imdsv1 = imdsv1
        self.silent = silent
        self.error_rate = error_rate
        self.error_statuses = error_statuses
        self.faults: List[Fault] = list(faults) if faults else []
        self.verbose = verbose
        self._server: Optional[_IMDSServer] = None
        self.listen_queue = listen_queue
        self.max_connections = max_connections
        self.over_capacity = over_capacity
        self.throttle = throttle
        self._bucket = (0.0, 0.0)  # (tokens, monotonic time of the last refill)
        self.rate_burst = rate_burst
        self.rate_limit = rate_limit
        self.keep_alive = keep_alive
        self.http10 = http10
        self.vanishing_tag = vanishing_tag
        self._rng = random.Random(seed)
        self._tokens: Dict[str, float] = {}
        self._stats = Stats()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- validated knobs ---------------------------------------------------

    @property
    def latency(self) -> float:
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0 seconds")
        self._latency = float(seconds)

    @property
    def token_ttl_cap(self) -> Optional[int]:
        return self._token_ttl_cap

    @token_ttl_cap.setter
    def token_ttl_cap(self, seconds: Optional[int]) -> None:
        if seconds is not None and not 1 <= seconds <= MAX_TOKEN_TTL:
            raise ValueError(f"token_ttl_cap must be None or 1..{MAX_TOKEN_TTL} seconds")
        self._token_ttl_cap = seconds

    @property
    def error_rate(self) -> float:
        return self._error_rate

    @error_rate.setter
    def error_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        self._error_rate = float(rate)

    @property
    def error_statuses(self) -> Tuple[int, ...]:
        return self._error_statuses

    @error_statuses.setter
    def error_statuses(self, statuses: Sequence[int]) -> None:
        checked = tuple(statuses)
        if not checked or not all(100 <= s <= 599 for s in checked):
            raise ValueError("error_statuses must be a non-empty sequence of HTTP status codes")
        self._error_statuses = checked

    @property
    def listen_queue(self) -> int:
        return self._listen_queue

    @listen_queue.setter
    def listen_queue(self, size: int) -> None:
        if not 0 <= size <= 65535:
            raise ValueError("listen_queue must be between 0 and 65535")
        self._listen_queue = size
        server = self._server
        if server is not None:  # listen() again resizes the queue of a listening socket
            server.socket.listen(size)

    @property
    def max_connections(self) -> Optional[int]:
        return self._max_connections

    @max_connections.setter
    def max_connections(self, count: Optional[int]) -> None:
        if count is not None and count < 1:
            raise ValueError("max_connections must be None or >= 1")
        self._max_connections = count

    @property
    def over_capacity(self) -> str:
        return self._over_capacity

    @over_capacity.setter
    def over_capacity(self, action: str) -> None:
        if action not in OVER_CAPACITY_ACTIONS:
            raise ValueError(f"over_capacity must be one of {', '.join(OVER_CAPACITY_ACTIONS)}")
        self._over_capacity = action

    @property
    def throttle(self) -> str:
        return self._throttle

    @throttle.setter
    def throttle(self, action: str) -> None:
        action = str(action)
        if action not in THROTTLE_ACTIONS:
            raise ValueError(f"throttle must be one of {', '.join(THROTTLE_ACTIONS)}")
        self._throttle = action

    @property
    def rate_limit(self) -> Optional[float]:
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, per_second: Optional[float]) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError("rate_limit must be None or > 0 requests per second")
        self._rate_limit = None if per_second is None else float(per_second)
        depth = self._depth()
        self._bucket = (depth, time.monotonic())  # starts full

    @property
    def rate_burst(self) -> Optional[float]:
        return self._rate_burst

    @rate_burst.setter
    def rate_burst(self, depth: Optional[float]) -> None:
        if depth is not None and depth < 1:
            raise ValueError("rate_burst must be None or >= 1 request")
        self._rate_burst = None if depth is None else float(depth)
        self._bucket = (self._depth(), time.monotonic())

    def _depth(self) -> float:
        rate = getattr(self, "_rate_limit", None)
        if self._rate_burst is not None:
            return self._rate_burst
        return rate if rate is not None else 0.0

    def _admit(self) -> bool:
        """Take a token from the rate limit's bucket (caller holds the lock)."""
        rate = self._rate_limit
        if rate is None:
            return True
        tokens, then = self._bucket
        now = time.monotonic()
        tokens = min(self._depth(), tokens + (now - then) * rate)
        if tokens < 1.0:
            self._bucket = (tokens, now)
            return False
        self._bucket = (tokens - 1.0, now)
        return True

    # -- lifecycle -----------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Simulator:
        """Bind and serve in a daemon thread.

        After a stop() it rebinds the same port and still honours the tokens
        it issued, so a restart tests dropped connections alone; call
        expire_tokens() to lose the tokens too.
        """
        if self._server is not None:
            raise RuntimeError("simulator already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._stopping.clear()
        server = _IMDSServer((self.host, self.port), self, family)
        self.port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever,
            name=f"imds-simulator-{self.port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every connection, including hung and silent ones."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        self._stopping.set()
        server.shutdown()
        if thread is not None:
            thread.join(1.0)
        server.server_close()
        server.close_all(timeout=1.0)

    def __enter__(self) -> Simulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Simulator {self.url} {state}>"

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
            if segments == ["user-data"] and isinstance(node, Leaf):
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

    def configure(self, **knobs: Any) -> None:
        """Set knobs by the constructor's names (a scenario's, say); ``faults`` are added."""
        for name, value in knobs.items():
            if name == "faults":
                self.faults.extend(value)
            elif name in _LIVE_KNOBS:
                setattr(self, name, value)
            else:
                raise TypeError(f"not a live simulator knob: {name}")

    def add_fault(self, *args: Any, **kwargs: Any) -> Fault:
        """Shorthand for ``faults.append(Fault(...))`` that returns the Fault (or takes one)."""
        if len(args) == 1 and isinstance(args[0], Fault) and not kwargs:
            fault = args[0]
        else:
            fault = Fault(*args, **kwargs)
        self.faults.append(fault)
        return fault

    # -- counters ----------------------------------------------------------------

    @property
    def stats(self) -> Stats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return copy.deepcopy(self._stats)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = Stats()

    def _count_connection(self, opened: int = 0, over_capacity: bool = False) -> None:
        with self._lock:
            stats = self._stats
            stats.connections += 1
            stats.over_capacity += over_capacity
            stats.peak_connections = max(stats.peak_connections, opened)

    # -- request handling ---------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        started, started_cpu = time.perf_counter(), time.thread_time()
        method = handler.command
        raw_path = handler.path
        if raw_path.startswith(("http://", "https://")):  # absolute-form request target
            raw_path = urlsplit(raw_path).path or "/"
        raw_path = raw_path.split("?", 1)[0].split("#", 1)[0]
        path = unquote(raw_path)
        if path.startswith(CONTROL_PREFIX):  # live control (control.py): no stats, no faults
            status, body = self._control(
                method, handler.path, handler.client_address, handler.fields
            )
            handler.send_reply(_Reply(status, body, "application/json"), head_only=False)
            return
        with self._lock:
            stats = self._stats
            stats.requests += 1
            stats.by_path[f"{method} {raw_path}"] += 1
            if method == "PUT" and path == TOKEN_PATH:
                stats.token_requests += 1
            admitted = self._admit()
            if not admitted:
                stats.throttled += 1
            fault = None
            for candidate in list(self.faults):
                if (
                    admitted
                    and candidate.active
                    and candidate.matches(method, path, raw_path)
                    and candidate.strikes(self._rng)
                ):
                    fault = candidate
                    break
        if not admitted:
            self._throttled(handler, method)
        else:
            self._respond(handler, method, raw_path, fault)
        with self._lock:
            stats = self._stats
            stats.server_time += time.perf_counter() - started
            stats.server_cpu_time += time.thread_time() - started_cpu

    def _send(self, handler: _Handler, reply: _Reply, method: str, truncate: bool = False) -> None:
        # Count first: a client that has its answer must find it in the stats.
        with self._lock:
            self._stats.by_status[reply.status] += 1
        handler.send_reply(reply, method == "HEAD", truncate)

    def _throttled(self, handler: _Handler, method: str) -> None:
        action = self._throttle
        if action == "drop":
            handler.drop()  # a dropped packet: the client hears nothing
            return
        self._send(handler, _error(int(action)), method)

    def _respond(
        self, handler: _Handler, method: str, raw_path: str, fault: Optional[Fault]
    ) -> None:
        latency = self._latency
        if latency > 0 and self._stopping.wait(latency):
            handler.abandon()
            return
        if self.silent:
            handler.drop()
            return
        if fault is None:
            self._send(handler, self._answer(method, raw_path, handler), method)
            return
        if fault.delay > 0 and self._stopping.wait(fault.delay):
            handler.abandon()
            return
        if fault.action == "reset":
            handler.reset()
            return
        if fault.action == "silent":
            handler.drop()
            return
        if fault.status is not None and fault.status >= 300 and fault.body is None:
            reply = _error(fault.status)
        else:
            reply = self._answer(method, raw_path, handler)
            if fault.status is not None:
                reply.status = fault.status
            if fault.body is not None:
                body = fault.body
                reply.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
                if fault.status is None:
                    reply.status = 200
                if reply.content_type == "text/html":
                    reply.content_type = "text/plain"
        if fault.headers:
            reply.headers.update(fault.headers)
        self._send(handler, reply, method, truncate=fault.action == "truncate")

    def _answer(self, method: str, raw_path: str, handler: _Handler) -> _Reply:
        path = raw_path
        if method == "PUT":
            if path != TOKEN_PATH:
                return _error(405, {"Allow": "GET, HEAD"})
            return self._issue_token(handler)
        if method not in ("GET", "HEAD"):
            allow = "PUT" if path == TOKEN_PATH else "GET, HEAD"
            return _error(405, {"Allow": allow})
        if path == TOKEN_PATH:
            return _error(405, {"Allow": "PUT"})
        rate = self._error_rate
        if rate > 0:
            with self._lock:
                if self._rng.random() < rate:
                    return _error(self._rng.choice(self._error_statuses))
        if not self._authorized(handler.fields.get(TOKEN_HEADER_KEY)):
            return _error(401)
        return self._lookup(raw_path)

    def _issue_token(self, handler: _Handler) -> _Reply:
        fields = handler.fields
        if "x-forwarded-for" in fields:
            return _error(403)
        raw = fields.get(TTL_HEADER_KEY)
        if raw is None or not _TTL_RE.fullmatch(raw.strip()):
            return _error(400)
        requested = int(raw.strip())
        if not 1 <= requested <= MAX_TOKEN_TTL:
            return _error(400)
        cap = self._token_ttl_cap
        granted = min(requested, cap) if cap is not None else requested
        token = base64.b64encode(secrets.token_bytes(42)).decode("ascii")
        now = time.monotonic()
        with self._lock:
            if len(self._tokens) > 1000:
                self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[token] = now + granted
        return _Reply(200, token.encode("ascii"), headers={TTL_HEADER: str(granted)})

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

    def _lookup(self, raw_path: str) -> _Reply:
        segments = [s for s in raw_path.split("/") if s]
        if not segments:
            return _Reply(200, b"latest")
        if segments[0] != "latest":
            return _error(404)
        segments = segments[1:]
        tags_enabled = self.tags_enabled
        if not tags_enabled and segments[:2] == ["meta-data", "tags"]:
            return _error(404)
        with self._data_lock:
            node: Node = self._root
            for depth, segment in enumerate(segments):
                if not isinstance(node, Directory):
                    return _error(404)
                child = _child(node, segment)
                if child is None and depth == 2 and segments[:2] == ["meta-data", "public-keys"]:
                    child = _public_key(node, segment)
                if child is None:
                    return _error(404)
                node = child
            if isinstance(node, Leaf):
                return _Reply(200, node.body, node.content_type)
            body = _listing(node, segments, tags_enabled)
        vanishing = self.vanishing_tag
        if vanishing is not None and segments == ["meta-data", "tags", "instance"]:
            # Named by the listing, gone when read: its own path answers 404.
            body += (b"\n" if body else b"") + vanishing.encode("utf-8")
        return _Reply(200, body)


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
