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

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER_KEY = TTL_HEADER.lower()
TOKEN_HEADER_KEY = TOKEN_HEADER.lower()
MAX_TOKEN_TTL = 21600
FAULT_ACTIONS = ("reset", "delay", "truncate", "silent")

_TTL_RE = re.compile(r"[0-9]{1,9}")
_MAX_BODY = 1 << 20
_TRUNCATE_EXTRA = 64


@dataclass
class Fault:
    """A scripted misbehaviour for requests matching ``method`` and ``path``.

    ``path`` is an exact path or an fnmatch glob, compared with both the raw and
    the percent-decoded request path (query string excluded). ``times=None``
    means forever, N means the next N matching requests; ``hits`` counts them.
    With ``status`` (or ``body``) the answer is replaced; ``delay`` answers late;
    ``action`` is one of ``reset``, ``delay``, ``truncate``, ``silent``.
    """

    path: str = "*"
    method: Optional[str] = None
    status: Optional[int] = None
    action: Optional[str] = None
    delay: float = 0.0
    body: Union[bytes, str, None] = None
    headers: Optional[Dict[str, str]] = None
    times: Optional[int] = None
    hits: int = field(default=0, compare=False)

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
        if self.method is not None:
            self.method = self.method.upper()

    @property
    def active(self) -> bool:
        return self.times is None or self.hits < self.times

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
        if version == "HTTP/1.0":
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
        lines = [
            f"HTTP/1.1 {reply.status} {_phrase(reply.status)}",
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
        self._conn_lock = threading.Lock()
        self._conns: Dict[socket.socket, threading.Thread] = {}
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
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="imds-simulator-conn",
            daemon=True,
        )
        with self._conn_lock:
            self._conns[request] = thread
        self.simulator._count_connection()
        thread.start()

    def mark_reset(self, sock: socket.socket) -> None:
        with self._conn_lock:
            self._to_reset.add(sock)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._conns.pop(request, None)
            reset = request in self._to_reset
            self._to_reset.discard(request)
        if not reset:
            super().shutdown_request(request)
            return
        with contextlib.suppress(OSError):  # linger 0: close() sends RST instead of FIN
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_request(request)

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


class Simulator(NoticeControls):
    """An IMDSv2 endpoint on loopback whose data and failure modes can change live.

    All knobs are plain attributes or validated properties and may be changed
    while it runs; each request reads them once.
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
    ) -> None:
        self._data_lock = threading.Lock()
        self._lock = threading.Lock()
        _, self._root = load(instance)
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
        self._rng = random.Random(seed)
        self._tokens: Dict[str, float] = {}
        self._stats = Stats()
        self._stopping = threading.Event()
        self._server: Optional[_IMDSServer] = None
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

    def add_fault(self, *args: Any, **kwargs: Any) -> Fault:
        """Shorthand for ``faults.append(Fault(...))`` that returns the Fault."""
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

    def _count_connection(self) -> None:
        with self._lock:
            self._stats.connections += 1

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
            status, body = self._control(method, handler.path, handler.client_address)
            handler.send_reply(_Reply(status, body, "application/json"), head_only=False)
            return
        with self._lock:
            stats = self._stats
            stats.requests += 1
            stats.by_path[f"{method} {path}"] += 1
            if method == "PUT" and path == TOKEN_PATH:
                stats.token_requests += 1
            fault = None
            for candidate in list(self.faults):
                if candidate.active and candidate.matches(method, path, raw_path):
                    candidate.hits += 1
                    fault = candidate
                    break
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
        path = unquote(raw_path)
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
        segments = [unquote(s) for s in raw_path.split("/") if s]
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
                child = node.entries.get(segment)
                if child is None and depth == 2 and segments[:2] == ["meta-data", "public-keys"]:
                    child = _public_key(node, segment)
                if child is None:
                    return _error(404)
                node = child
            if isinstance(node, Leaf):
                return _Reply(200, node.body, node.content_type)
            return _Reply(200, _listing(node, segments, tags_enabled))


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
