"""The transport contract: what the scheduler hands a transport, and what comes back.

The scheduler (``client``) decides what goes out when; a transport sends.
Two kinds implement this: the standard library's (``wire.StdlibTransport``,
many requests in flight on non-blocking sockets from the scheduler's own
thread, through its ``engine``) and a caller's HTTP library (``compat``, a
``requests.Session`` or ``urllib3.PoolManager`` sending one request at a
time, which the scheduler runs on worker threads, ``workers``). Either way
the scheduler drives a ``Sender``: ``submit`` a ``Job``, ``collect`` the
ones that ended as ``Done``.

A transport raises nothing but our ``IMDSError``s, worded here so that every
transport says the same failure the same way, and it marks on the ``Job``
what the scheduler's congestion control needs to know: ``throttled`` when
the service cut a fresh connection before any answer (a connection cap),
``resent`` for each connect abandoned for a fresh SYN.
"""

from __future__ import annotations

import re
import socket
from typing import Dict, List, NamedTuple, Optional, Protocol, Tuple, Union

from .bounds import MAX_BODY
from .errors import IMDSError, IMDSTimeoutError, IMDSUnavailableError

# Said when an answer is refused for its size.
BODY_TOO_LARGE = "body larger than {} KiB".format(MAX_BODY // 1024)
# What a refused connection most likely means, said where it happens.
NOT_REACHED_HINT = "not on EC2, or the metadata endpoint is wrong or turned off"
# A decimal number as HTTP writes one (Content-Length, Retry-After): str.isdigit()
# and int() accept more (superscript digits, signs, underscores, spaces).
DIGITS = re.compile(r"[0-9]{1,16}\Z")


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
    """One request, and the scheduler's bookkeeping of it through its retries.

    A transport reads ``method``, ``path`` and ``headers`` (never changing
    them: one dict serves many jobs), and sets ``throttled`` and counts
    ``resent`` (see the module docstring). The rest is the scheduler's,
    carried on the job so that a retry costs no new object:

    - ``key``: what the caller asked for (a path under ``/latest/`` for a
      read, the full path for the token PUT), the key of its outcome;
    - ``needs_token``: it leaves with the session token (IMDSv2), stamped
      into ``headers`` as it leaves;
    - ``renewed``: it was already sent again once after a 401;
    - ``tries``: attempts made; ``failures``: of which failed for a reason
      other than the service being busy;
    - ``not_before``: monotonic time before which it may not be sent (back-off);
    - ``started``: monotonic time of its first send (0 before), from which its
      deadline runs; ``until``: its pass's deadline.
    """

    __slots__ = (
        "failures",
        "headers",
        "key",
        "method",
        "needs_token",
        "not_before",
        "path",
        "renewed",
        "resent",
        "started",
        "throttled",
        "tries",
        "until",
    )

    def __init__(
        self,
        method: str,
        path: str,
        headers: Dict[str, str],
        key: str = "",
        needs_token: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.throttled = False
        self.resent = 0
        self.key = key
        self.needs_token = needs_token
        self.renewed = False
        self.tries = 0
        self.failures = 0
        self.not_before = 0.0
        self.started = 0.0
        self.until = _NEVER


_NEVER = float("inf")

# What one send of a job came to: an answer, or the error that kept it from one.
SendOutcome = Union[Response, IMDSError]
# A job whose send ended: the job, its outcome, when it was sent.
Done = Tuple[Job, SendOutcome, float]


class Transport:
    """Sends one request to ``base_url + job.path``, blocking; raises only our errors.

    ``send`` runs on the scheduler's worker threads, several at once. A
    transport that can keep many requests in flight itself offers
    ``engine(timeout)`` too, a ``Sender`` (see ``wire.StdlibTransport``),
    which the scheduler prefers.
    """

    # The caller's HTTP library, whose exceptions ec2-metadata users catch (see compat).
    library: Optional[str] = None
    # The most sends it takes at once (a caller's connection pool holds so
    # many); None: as many as the scheduler allows.
    concurrency: Optional[int] = None

    def send(self, job: Job, timeout: float) -> Response:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Drop pooled connections (they are re-opened on demand)."""


class Sender(Protocol):
    """What the scheduler drives during a pass: ``wire.Engine``, ``workers.Threaded``."""

    def submit(self, job: Job, now: float, until: Optional[float] = None) -> None:
        """Start ``job``: it ends within the transport's timeout, or by ``until`` (the deadline)."""

    def collect(self, wait: Optional[float]) -> List[Done]:
        """The jobs that ended, after at most ``wait`` seconds (``None``: until one does)."""

    def close(self) -> None:
        """End what is still out."""


# -- how every transport words a failure -------------------------------------------
# ``where`` is the endpoint as ``config.host_port`` writes it (``169.254.169.254:80``).


def unreachable(where: str, why: str) -> IMDSUnavailableError:
    """No connection at all (refused, DNS, TLS); ``why`` from ``why_unreachable``."""
    return IMDSUnavailableError("cannot reach IMDS at {}: {}".format(where, why))


def broken(where: str, what: str, job: Job, why: str) -> IMDSUnavailableError:
    """A connection that ``what`` ("dropped the connection", "sent an unusable answer")."""
    return IMDSUnavailableError(
        "IMDS at {} {} ({} {}): {}".format(where, what, job.method, job.path, why)
    )


def timed_out(where: str, connecting: bool, seconds: float, job: Job) -> IMDSTimeoutError:
    """An attempt that ran out of time, still connecting or waiting for the answer."""
    what = "could not connect to" if connecting else "no answer from"
    return IMDSTimeoutError(
        "{} IMDS at {} within {:g}s ({} {})".format(what, where, seconds, job.method, job.path)
    )


def why_unreachable(exc: BaseException, https: bool) -> str:
    """The cause of a failed connect, and what it most likely means, for one line."""
    import ssl  # only a failed connect needs it: a costly import

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


__all__ = ["Done", "Job", "Response", "SendOutcome", "Sender", "Transport"]
