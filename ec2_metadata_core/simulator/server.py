"""The simulator's HTTP server: ``Simulator``, its sockets, threads and HTTP/1.1 framing.

This module's one job is the wire and the lifecycle: bind, accept, a thread a
connection, read each request (its own small parser: http.server's is the
costliest part of a request), count it in ``Stats``, hand it to the faults and
limits (``faults.py``) and the instance protocol (``protocol.py``), and frame
the ``Reply`` they give, with ``Connection: close`` after every answer unless
``keep_alive`` (the real service's behaviour, which every benchmark figure is
measured against). ``Simulator`` mixes in those two and the live controls
(``control.py``) and holds the state of all of them.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import random
import selectors
import socket
import socketserver
import sys
import threading
import time
import traceback
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Type, Union
from urllib.parse import unquote, urlsplit

from .control import PREFIX as CONTROL_PREFIX
from .control import NoticeControls
from .faults import Connection, Fault, FaultsAndLimits, reset_now, turn_away
from .instance import InstanceSource, load
from .protocol import TOKEN_PATH, InstanceProtocol, Reply, error, phrase
from .signing import IdentitySigner, default_signer, sign_tree
from .stats import Stats

_MAX_BODY = 1 << 20
_TRUNCATE_EXTRA = 64


_DATE_CACHE: List[Any] = [0, ""]


def _date_header() -> str:
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
            self.send_reply(error(400), head_only=False)
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

    def send_reply(self, reply: Reply, head_only: bool, truncate: bool = False) -> None:
        body = reply.body
        length = len(body) + (_TRUNCATE_EXTRA if truncate else 0)
        if truncate:
            self.close_connection = True
        version = "HTTP/1.0" if self.server.simulator.http10 else "HTTP/1.1"
        lines = [
            f"{version} {reply.status} {phrase(reply.status)}",
            f"Date: {_date_header()}",
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
            turn_away(request, sim.over_capacity)
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
        reset_now(request)

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


class Simulator(NoticeControls, InstanceProtocol, FaultsAndLimits):
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
        # Guards the counters, the tokens, the random generator, the bucket and the faults.
        self._lock = threading.Lock()
        # The instance protocol's (protocol.py): the tree, its signer, the tokens, the rules.
        self._data_lock = threading.Lock()
        _, self._root = load(instance)
        # Identity documents are signed with the process's shared key (True),
        # a given IdentitySigner, or not at all (None/False: the data file's values).
        self.signer = default_signer() if signer is True else (signer or None)
        sign_tree(self._root, self.signer)
        self._tokens: Dict[str, float] = {}
        self.token_ttl_cap = token_ttl_cap
        self.tags_enabled = tags_enabled
        self.imdsv1 = imdsv1
        self.vanishing_tag = vanishing_tag
        # The faults and limits' (faults.py).
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self.latency = latency
        self.silent = silent
        self.error_rate = error_rate
        self.error_statuses = error_statuses
        self.faults: List[Fault] = list(faults) if faults else []
        self.max_connections = max_connections
        self.over_capacity = over_capacity
        self.throttle = throttle
        self._bucket = (0.0, 0.0)  # (tokens, monotonic time of the last refill)
        self.rate_burst = rate_burst
        self.rate_limit = rate_limit
        # The server's own.
        self.host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        self.port = port
        self.verbose = verbose
        self.keep_alive = keep_alive
        self.http10 = http10
        self._server: Optional[_IMDSServer] = None
        self._thread: Optional[threading.Thread] = None
        self.listen_queue = listen_queue
        self._stats = Stats()

    # -- the listener ----------------------------------------------------------

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
        if thread is not None and thread.ident is not None:  # None: Ctrl-C came before it ran
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

    def configure(self, **knobs: Any) -> None:
        """Set knobs by the constructor's names (a scenario's, say); ``faults`` are added."""
        for name, value in knobs.items():
            if name == "faults":
                self.faults.extend(value)
            elif name in _LIVE_KNOBS:
                setattr(self, name, value)
            else:
                raise TypeError(f"not a live simulator knob: {name}")

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
            handler.send_reply(Reply(status, body, "application/json"), head_only=False)
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
            fault = self._strike(method, path, raw_path) if admitted and self.faults else None
        if not admitted:
            self._throttled(handler, method)
        else:
            self._respond(handler, method, raw_path, fault)
        with self._lock:
            stats = self._stats
            stats.server_time += time.perf_counter() - started
            stats.server_cpu_time += time.thread_time() - started_cpu

    def _send(self, handler: Connection, reply: Reply, method: str, truncate: bool = False) -> None:
        # Count first: a client that has its answer must find it in the stats.
        with self._lock:
            self._stats.by_status[reply.status] += 1
        handler.send_reply(reply, method == "HEAD", truncate)
