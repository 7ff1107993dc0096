"""Faults and limits: how the simulator pushes back, on purpose, as a busy or broken IMDS does.

This module's one job is deciding when a request is not answered the healthy
way: scripted ``Fault`` s (a status, a body, a delay, a reset, a truncated or
never-sent answer, for every Nth, K of N or a fraction of the requests that
match), the random ``error_rate``, added ``latency``, ``silent``, the cap on
simultaneous connections (``max_connections``, beyond it ``over_capacity``) and
the rate limit (a token bucket of ``rate_limit``/``rate_burst``, beyond it
``throttle``: 429, 503 or never answered). ``Simulator`` (``server.py``) mixes
``FaultsAndLimits`` in; the server carries out what is decided here on the
``Connection`` the request came on.
"""

from __future__ import annotations

import contextlib
import fnmatch
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Protocol, Sequence, Tuple, Union

from .protocol import Reply, error

FAULT_ACTIONS = ("reset", "delay", "truncate", "silent")
OVER_CAPACITY_ACTIONS = ("reset", "refuse")
THROTTLE_ACTIONS = ("429", "503", "drop")


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


class Connection(Protocol):
    """The connection a request came on, as the server's handler offers it to faults."""

    fields: Dict[str, str]  # the request's headers, lower-case names

    def send_reply(self, reply: Reply, head_only: bool, truncate: bool = False) -> None:
        """Write the answer (``truncate``: promise more body than is sent, then close)."""

    def drop(self) -> None:
        """Leave the request unanswered; the connection stays open."""

    def reset(self) -> None:
        """Cut the connection with a TCP RST."""

    def abandon(self) -> None:
        """Close without answering (the simulator is stopping)."""


def reset_now(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST (linger 0) rather than a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def turn_away(sock: socket.socket, over_capacity: str) -> None:
    """A connection beyond ``max_connections``: cut at accept, or once its request is read."""
    if over_capacity == "refuse":
        reset_now(sock)  # before reading a byte: the nearest a listener gets to refusing
        return
    threading.Thread(target=_reset_after_request, args=(sock,), daemon=True).start()


def _reset_after_request(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.settimeout(1.0)
        sock.recv(65536)
    reset_now(sock)


class FaultsAndLimits:
    """The faults and limits of ``Simulator`` (mixed in): validated knobs and their effect."""

    silent: bool
    faults: List[Fault]
    _rng: random.Random  # seeded by ``seed``; under _lock
    _stopping: threading.Event  # set by stop(): waits for latency and delays end early
    _bucket: Tuple[float, float]  # (tokens, monotonic time of the last refill), under _lock
    _latency: float
    _error_rate: float
    _error_statuses: Tuple[int, ...]
    _max_connections: Optional[int]
    _over_capacity: str
    _throttle: str
    _rate_limit: Optional[float]
    _rate_burst: Optional[float]

    if TYPE_CHECKING:  # provided by Simulator (server.py) and InstanceProtocol (protocol.py)
        _lock: threading.Lock

        def _answer(self, method: str, raw_path: str, fields: Dict[str, str]) -> Reply: ...

        def _send(
            self, handler: Connection, reply: Reply, method: str, truncate: bool = False
        ) -> None: ...

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

    def add_fault(self, *args: Any, **kwargs: Any) -> Fault:
        """Shorthand for ``faults.append(Fault(...))`` that returns the Fault (or takes one)."""
        if len(args) == 1 and isinstance(args[0], Fault) and not kwargs:
            fault = args[0]
        else:
            fault = Fault(*args, **kwargs)
        self.faults.append(fault)
        return fault

    # -- deciding (the caller holds _lock) -------------------------------------

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

    def _strike(self, method: str, path: str, raw_path: str) -> Optional[Fault]:
        """The first active fault that matches and hits this request (caller holds the lock)."""
        for candidate in list(self.faults):
            if (
                candidate.active
                and candidate.matches(method, path, raw_path)
                and candidate.strikes(self._rng)
            ):
                return candidate
        return None

    def _random_error(self) -> Optional[Reply]:
        """``error_rate``'s error for this GET, or None (the protocol asks, past its 405s)."""
        with self._lock:
            if self._rng.random() < self._error_rate:
                return error(self._rng.choice(self._error_statuses))
        return None

    # -- answering -------------------------------------------------------------

    def _throttled(self, handler: Connection, method: str) -> None:
        action = self._throttle
        if action == "drop":
            handler.drop()  # a dropped packet: the client hears nothing
            return
        self._send(handler, error(int(action)), method)

    def _respond(
        self, handler: Connection, method: str, raw_path: str, fault: Optional[Fault]
    ) -> None:
        """Answer an admitted request: late if ``latency``, then as ``silent`` or ``fault`` say."""
        latency = self._latency
        if latency > 0 and self._stopping.wait(latency):
            handler.abandon()
            return
        if self.silent:
            handler.drop()
            return
        if fault is None:
            self._send(handler, self._answer(method, raw_path, handler.fields), method)
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
            reply = error(fault.status)
        else:
            reply = self._answer(method, raw_path, handler.fields)
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
