"""The standard-library transport: IMDS requests on non-blocking sockets, many in flight.

A full gather is about a hundred tiny requests, and the real service answers
each on a connection of its own (``Connection: close``), so the cost is
connects and round trips. The scheduler (``client``) decides what goes out
when; ``Engine`` keeps the requests it submits in flight from the
scheduler's own thread (epoll, else ``selectors``) and hands back those that ended.
Connects never block: a SYN the service dropped is abandoned after a wait
derived from the connect times measured (``pacing.SynTimer``, TCP's RTO) and a
fresh one sent in the same attempt, instead of waiting out the kernel's 1 s
resend while every other request stalls.
Measured on the same scheduler, running each request blocking on a worker
thread instead cost some 40 % more CPU (handing the GIL between threads),
and ``http.client`` on those threads twice as much (its header parsing goes
through ``email``): every gather, and a watcher polling for hours, would pay.

It implements the contract in ``transport`` (``Job`` in, ``Done`` out, only
our ``IMDSError``s raised), as ``compat``'s transports over a caller's HTTP
library do; unlike them it offers an ``engine``, which the scheduler drives
from its own thread instead of running blocking sends on worker threads.

The HTTP/1.1 is our own and small (``http1``).
``StdlibTransport`` must stay standard library only: it runs inside an
Ansible module payload and in Salt minions. The host is resolved once per
transport, idle kept-alive connections are reused (the real service closes
every one; the simulator's keep-alive knob does not), and a forked child
never touches the connections it inherited.
"""

from __future__ import annotations

import errno
import os
import select
import selectors
import socket
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from .config import split_endpoint
from .errors import IMDSError, IMDSUnavailableError
from .http1 import Malformed, ResponseParser, encode
from .pacing import HEDGE_FLOOR, HEDGE_INITIAL, SynTimer
from .transport import (
    Done,
    Job,
    Response,
    SendOutcome,
    Transport,
    broken,
    timed_out,
    unreachable,
    why_unreachable,
)

# Idle kept-alive connections held for reuse (when the service keeps any).
MAX_IDLE = 32
# A GET sent and not answered within the answer times measured is sent once
# more on a fresh connection, and the first answer wins (a hedged request,
# see pacing.HEDGE_FLOOR); HEDGES_AT_ONCE bounds the extra load against a
# service that is silent.
HEDGES_AT_ONCE = 2


class StdlibTransport(Transport):
    """Where to connect (resolved once), and kept-alive sockets shared by every thread."""

    def __init__(self, base_url: str) -> None:
        endpoint = split_endpoint(base_url)  # ValueError unless a base URL
        self.https, self.host, self.port = endpoint
        self.host_header = endpoint.host_header()
        self.where = endpoint.where()  # how messages name the endpoint
        self._address: Optional[Tuple[int, Any]] = None
        self.syn_timer = SynTimer()
        self.answer_timer = SynTimer(HEDGE_INITIAL, HEDGE_FLOOR, float("inf"))
        self._idle: List[socket.socket] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def __repr__(self) -> str:
        scheme = "https" if self.https else "http"
        return "StdlibTransport({}://{})".format(scheme, self.host_header)

    def unreachable(self, exc: BaseException) -> IMDSUnavailableError:
        """The one-line error for whatever connecting raised (refused, DNS, IDNA, TLS)."""
        return unreachable(self.where, why_unreachable(exc, self.https))

    def engine(self, timeout: float) -> Engine:
        """Many requests in flight from the calling thread (see ``Engine``)."""
        return Engine(self, timeout)

    def send(self, job: Job, timeout: float) -> Response:
        engine = self.engine(timeout)
        try:
            engine.submit(job, time.monotonic())
            finished: List[Done] = []
            while not finished:
                finished = engine.collect(None)
        finally:
            engine.close()
        outcome = finished[0][1]
        if isinstance(outcome, IMDSError):
            raise outcome
        return outcome

    def idle(self) -> Optional[socket.socket]:
        if not self._idle:  # the usual case (Connection: close): no lock, no getpid()
            return None
        with self._lock:
            self._own()
            return self._idle.pop() if self._idle else None

    def _own(self) -> None:
        """In a forked child (a Salt job, say), forget the idle sockets it inherited.

        Using them would interleave both processes' answers; closing the
        child's copies leaves the parent's connections up. Called with the lock.
        """
        if self._pid != os.getpid():
            self._pid = os.getpid()
            idle, self._idle = self._idle, []
            for sock in idle:
                sock.close()

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
            # Non-blocking from birth where the system allows (one syscall less a
            # request). socket.socket, not the leaner _socket.socket: the test
            # suite's guard against connects off this machine patches its methods.
            sock = socket.socket(family, socket.SOCK_STREAM | _NONBLOCK)
        except OSError as exc:
            raise self.unreachable(exc) from None
        if not _NONBLOCK:
            sock.setblocking(False)
        try:
            if self.https:  # TLS writes records back to back; a request is one write
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
            self._own()
            if len(self._idle) < MAX_IDLE:
                self._idle.append(sock)
                return
        sock.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()


# Linux: a socket created non-blocking (elsewhere setblocking() does it).
_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)

# Flight states: what the socket waits for.
_CONNECTING, _HANDSHAKE, _SENDING, _RECEIVING = range(4)


class _InFlight:
    __slots__ = (
        "began",
        "connect_began",
        "connect_by",
        "deadline",
        "hedge_at",
        "hedged",
        "job",
        "out",
        "parser",
        "reused",
        "sent_at",
        "sock",
        "state",
        "twin",
    )

    def __init__(self, job: Job, began: float, deadline: float) -> None:
        self.job = job
        self.began = began
        self.deadline = deadline
        self.sock: Any = None
        self.reused = False
        self.state = _CONNECTING
        self.connect_began = 0.0
        self.connect_by = 0.0
        self.out = b""
        self.parser = ResponseParser(job.method)
        self.sent_at = 0.0
        self.hedge_at = _NEVER
        self.hedged = False  # sent twice: its answer time says nothing (Karn)
        self.twin: Optional[_InFlight] = None  # the other copy of a hedged request


_NEVER = float("inf")


class _Poller:
    """Readiness of sockets by descriptor: ``selectors`` cut to what ``Engine`` uses.

    Descriptors, not socket objects: no key object a call. ``forget(fd,
    closing=True)`` for a socket about to be closed costs nothing on epoll,
    which drops a descriptor when it closes. A watcher's every poll is a
    handful of connections, for hours: the calls saved are its CPU.
    """

    def __init__(self) -> None:
        epoll = getattr(select, "epoll", None)
        self._epoll = epoll() if epoll is not None else None
        self._selector = selectors.DefaultSelector() if epoll is None else None
        self._masks = {
            selectors.EVENT_READ: getattr(select, "EPOLLIN", 1),
            selectors.EVENT_WRITE: getattr(select, "EPOLLOUT", 4),
        }

    def watch(self, fd: int, events: int, new: bool) -> None:
        if self._epoll is not None:
            mask = self._masks[events]
            (self._epoll.register if new else self._epoll.modify)(fd, mask)
        elif self._selector is not None:
            (self._selector.register if new else self._selector.modify)(fd, events)

    def forget(self, fd: int, closing: bool) -> None:
        if self._epoll is not None:
            if not closing:
                self._epoll.unregister(fd)
        elif self._selector is not None:
            self._selector.unregister(fd)

    def wait(self, timeout: float) -> List[Tuple[int, int]]:
        """(descriptor, events) of those ready within ``timeout`` seconds."""
        if self._epoll is not None:
            ready: List[Tuple[int, int]] = self._epoll.poll(timeout)
            return ready
        if self._selector is None:  # closed
            return []
        return [(key.fd, events) for key, events in self._selector.select(timeout)]

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        elif self._selector is not None:
            self._selector.close()


class Engine:
    """Requests in flight on non-blocking sockets, driven from the scheduler's own thread.

    ``submit`` starts a request (a connect that never blocks, or a kept-alive
    socket); ``collect(wait)`` waits at most ``wait`` seconds for sockets to
    be ready, moves each request on (connect, TLS handshake, send, receive)
    and returns those that ended. ``timeout`` covers one attempt: connect
    (however many SYNs it takes), send and answer. A kept-alive socket found
    closed before any answer is replaced by a fresh one, without an outcome.
    One thread, no locks: the GIL is never handed between threads, which
    made a pool of blocking senders cost half as much CPU again per request.
    """

    def __init__(self, transport: StdlibTransport, timeout: float) -> None:
        self.transport = transport
        self.timeout = timeout
        self.poller = _Poller()
        self.hedges = 0  # twins in flight
        self.active: Dict[int, _InFlight] = {}
        self.finished: List[Done] = []

    def submit(self, job: Job, now: float, until: Optional[float] = None) -> None:
        """Start ``job``: it ends within ``timeout``, or by ``until`` (a pass's deadline)."""
        deadline = now + self.timeout if until is None else min(now + self.timeout, until)
        flight = _InFlight(job, now, deadline)
        flight.out = encode(self.transport.host_header, job)
        sock = self.transport.idle()
        if sock is not None:
            flight.sock, flight.reused, flight.state = sock, True, _SENDING
            self._send(flight)
        else:
            self._connect(flight)

    def collect(self, wait: Optional[float]) -> List[Done]:
        """Requests that ended, after at most ``wait`` seconds (``None``: until one does)."""
        if not self.finished and self.active:
            due = _NEVER  # the first flight due for a fresh SYN, a hedge or its deadline
            for f in self.active.values():
                at = f.connect_by if f.state == _CONNECTING else f.hedge_at
                if f.deadline < at:
                    at = f.deadline
                if at < due:
                    due = at
            until = due - time.monotonic()
            wait = until if wait is None else min(wait, until)
            # The flights first: stepping one may settle another, or reuse its descriptor.
            ready = [(fd, self.active.get(fd)) for fd, _events in self.poller.wait(max(0.0, wait))]
            for fd, woken in ready:
                if woken is not None and self.active.get(fd) is woken:
                    self._step(woken)
            now = time.monotonic()
            if now >= due:  # else no flight is due: one stepped now is due later still
                self._overdue(now)
        finished, self.finished = self.finished, []
        return finished

    def close(self) -> None:
        for left in list(self.active.values()):
            left.sock.close()
        self.active.clear()
        self.poller.close()

    # -- one request's way ---------------------------------------------------

    def _step(self, flight: _InFlight) -> None:
        state = flight.state
        if state == _CONNECTING:
            self._connected(flight)
        elif state == _HANDSHAKE:
            self._handshake(flight)
        elif state == _SENDING:
            self._send(flight)
        else:
            self._receive(flight)

    def _watch(self, flight: _InFlight, events: int) -> None:
        fd = flight.sock.fileno()
        new = fd not in self.active
        self.active[fd] = flight
        self.poller.watch(fd, events, new)

    def _forget(self, flight: _InFlight, closing: bool = False) -> None:
        fd = flight.sock.fileno()
        if self.active.get(fd) is flight:
            self.poller.forget(fd, closing)
            del self.active[fd]

    def _settle(self, flight: _InFlight, outcome: Optional[SendOutcome], keep: bool) -> None:
        twin = flight.twin
        if twin is not None and outcome is not None:
            # One copy of a hedged request ended: an answer is the request's and
            # the other copy is dropped; a failure waits for the other copy.
            flight.twin = twin.twin = None
            self.hedges -= 1
            alive = twin.sock is not None and self.active.get(twin.sock.fileno()) is twin
            if isinstance(outcome, IMDSError) and alive:
                outcome = None
            elif alive:
                self._settle(twin, None, False)
        if flight.sock is not None:
            self._forget(flight, closing=not keep)
            if keep:
                self.transport.release(flight.sock)
            else:
                flight.sock.close()
        if outcome is not None:
            self.finished.append((flight.job, outcome, flight.began))

    def _connect(self, flight: _InFlight) -> None:
        try:
            flight.sock = self.transport.open()
        except IMDSError as exc:
            flight.sock = None
            self._settle(flight, exc, False)
            return
        flight.reused, flight.state = False, _CONNECTING
        resent = flight.job.resent
        syn_timer = self.transport.syn_timer
        wait = min(syn_timer.wait(resent) if resent else syn_timer.current, self.timeout / 2.0)
        flight.connect_began = now = time.monotonic()
        flight.connect_by = now + wait
        if not self.transport.https:
            # A handshake the kernel finished within connect() (loopback, a
            # fast link-local answer) takes the request at once: no wait for
            # "writable", no SO_ERROR query. Still connecting: EAGAIN.
            try:
                sent = flight.sock.send(flight.out)
            except (BlockingIOError, InterruptedError):
                pass
            except ConnectionRefusedError as exc:
                self._settle(flight, self.transport.unreachable(exc), False)
                return
            except OSError as exc:
                self._lost(flight, exc)
                return
            else:
                self._measure(flight)
                flight.out = flight.out[sent:]
                if flight.out:
                    flight.state = _SENDING
                    self._watch(flight, selectors.EVENT_WRITE)
                else:
                    self._sent(flight)
                return
        self._watch(flight, selectors.EVENT_WRITE)

    def _measure(self, flight: _InFlight) -> None:
        """A connect done: its time goes to the SYN timer, unless it took a fresh SYN (Karn)."""
        if not flight.job.resent:
            self.transport.syn_timer.measured(time.monotonic() - flight.connect_began)

    def _connected(self, flight: _InFlight) -> None:
        transport = self.transport
        code = flight.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._settle(flight, transport.unreachable(_os_error(code)), False)
            return
        self._measure(flight)
        if transport.https:
            import ssl

            self._forget(flight)  # wrapping detaches the plain socket from its descriptor
            try:
                context = ssl.create_default_context()
                tls = context.wrap_socket(
                    flight.sock, server_hostname=transport.host, do_handshake_on_connect=False
                )
            except (OSError, ValueError) as exc:
                self._settle(flight, transport.unreachable(exc), False)
                return
            flight.sock, flight.state = tls, _HANDSHAKE
            self._handshake(flight)
            return
        flight.state = _SENDING
        self._send(flight)

    def _handshake(self, flight: _InFlight) -> None:
        import ssl

        try:
            flight.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(flight, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(flight, selectors.EVENT_WRITE)
            return
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self._settle(flight, self.transport.unreachable(exc), False)
            return
        flight.state = _SENDING
        self._send(flight)

    def _send(self, flight: _InFlight) -> None:
        try:
            sent = flight.sock.send(flight.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(flight, exc)
            return
        flight.out = flight.out[sent:]
        if flight.out:
            self._watch(flight, selectors.EVENT_WRITE)
            return
        self._sent(flight)

    def _sent(self, flight: _InFlight) -> None:
        """The request is out: wait for the answer, and hedge a GET that takes too long."""
        flight.state = _RECEIVING
        flight.sent_at = now = time.monotonic()
        if flight.job.method == "GET" and not flight.hedged:
            flight.hedge_at = now + self.transport.answer_timer.current
        self._watch(flight, selectors.EVENT_READ)

    def _lost(self, flight: _InFlight, exc: BaseException) -> None:
        """The connection broke before or while the answer came."""
        if flight.reused and not flight.parser.started:
            # A kept-alive socket the service had closed: try a fresh one.
            self._settle(flight, None, False)
            self.transport.close()  # its idle siblings are as stale as it was
            flight.parser = ResponseParser(flight.job.method)
            flight.out = encode(self.transport.host_header, flight.job)
            self._connect(flight)
            return
        if not flight.parser.started:
            flight.job.throttled = True  # cut before any answer: a connection cap
        self._settle(flight, self._failed("dropped the connection", flight, _reason(exc)), False)

    def _receive(self, flight: _InFlight) -> None:
        sock = flight.sock
        try:
            data = sock.recv(65536)
            if self.transport.https:  # TLS: what it decrypted and holds is ours too
                while data and sock.pending():
                    data += sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if type(exc).__name__ in ("SSLWantReadError", "SSLWantWriteError"):
                return
            self._lost(flight, exc)
            return
        parser = flight.parser
        try:
            if not data:
                if flight.reused and not parser.started:
                    self._lost(flight, ConnectionResetError(errno.ECONNRESET, "closed"))
                    return
                self._settle(flight, parser.eof(), False)
                return
            response = parser.feed(data)
        except Malformed as exc:
            if not str(exc) and not parser.started:
                self._lost(flight, ConnectionResetError(errno.ECONNRESET, "connection closed"))
                return
            why = str(exc) or "connection closed"
            self._settle(flight, self._failed("sent an unusable answer", flight, why), False)
            return
        if response is not None:
            if not flight.hedged and flight.sent_at:
                self.transport.answer_timer.measured(time.monotonic() - flight.sent_at)
            self._settle(flight, response, parser.keep_alive)

    def _overdue(self, now: float) -> None:
        for flight in list(self.active.values()):
            if flight.deadline <= now:
                self._settle(flight, self._timed_out(flight), False)
            elif flight.state == _CONNECTING and flight.connect_by <= now:
                # A dropped SYN: a fresh one now, same attempt, same deadline.
                flight.job.resent += 1
                self._settle(flight, None, False)
                self._connect(flight)
            elif flight.state == _RECEIVING and flight.hedge_at <= now:
                flight.hedge_at = _NEVER
                if self.hedges < HEDGES_AT_ONCE:
                    self._hedge(flight)

    def _hedge(self, flight: _InFlight) -> None:
        """Send ``flight``'s request again on a connection of its own (see pacing.HEDGE_FLOOR)."""
        twin = _InFlight(flight.job, flight.began, flight.deadline)
        twin.out = encode(self.transport.host_header, flight.job)
        flight.hedged = twin.hedged = True
        flight.twin, twin.twin = twin, flight
        self.hedges += 1
        self._connect(twin)

    def _failed(self, what: str, flight: _InFlight, why: str) -> IMDSError:
        return broken(self.transport.where, what, flight.job, why)

    def _timed_out(self, flight: _InFlight) -> IMDSError:
        seconds = round(flight.deadline - flight.began, 3)
        return timed_out(self.transport.where, flight.state == _CONNECTING, seconds, flight.job)


def _os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


__all__ = ["Engine", "StdlibTransport"]
