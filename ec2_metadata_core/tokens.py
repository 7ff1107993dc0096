"""The IMDSv2 session token: one per client, fetched once however many threads ask.

The token comes from a PUT to ``TOKEN_PATH`` and travels in a header of
every read. ``TokenProvider`` holds it and says when it must be renewed (a
tenth of its lifetime early); whoever finds it run out renews it, and any
other thread that needs it meanwhile waits for that renewal rather than
sending its own. A read's pass (``client``) renews by sending the PUT as a
request of that same pass; a caller outside a pass (``get``) runs a pass of
its own for it. ``token_request`` is that PUT and ``token_from`` what its
answer means.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Callable, Optional, Tuple

from .bounds import MAX_TOKEN
from .config import Settings
from .errors import (
    HOP_LIMIT_HINT,
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    TokenError,
    TokenTimeoutError,
)
from .transport import Job, SendOutcome

TOKEN_PATH = "/latest/api/token"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
# Statuses of the token PUT that mean "this endpoint has no IMDSv2".
NO_V2_STATUSES = frozenset((403, 404, 405))
# A token travels in a header line: visible ASCII only.
_TOKEN = re.compile(r"[\x21-\x7e]+\Z")


class TokenProvider:
    """Holds one session token; fetches it once however many threads ask.

    The token is renewed shortly before the TTL the service granted runs out,
    and on demand after a 401 (``invalidate``). One thread renews at a time
    (``begin_renewal``); threads that waited for a renewal that failed get
    that failure instead of each repeating the fetch (a silent endpoint would
    otherwise cost every thread the full timeout).
    """

    def __init__(self, fetch: Callable[[int], Tuple[str, int]], ttl: int) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._lock = threading.Lock()
        self._renewal_ended = threading.Condition(self._lock)
        self._renewer: Optional[int] = None  # the thread renewing, while one is
        # (token, renew at) in one attribute so lock-free readers see a pair.
        self._current: Optional[Tuple[str, float]] = None
        self._failure: Optional[IMDSError] = None  # the last renewal's, until one succeeds

    def __repr__(self) -> str:
        state = "held" if self._current is not None else "none"
        return "TokenProvider(ttl={}, token={})".format(self.ttl, state)

    def valid(self, now: float) -> Optional[str]:
        """The token, if it need not be renewed yet at monotonic time ``now``."""
        current = self._current
        if current is not None and now < current[1]:
            return current[0]
        return None

    def get(self) -> str:
        """The token, fetched first (``fetch``, blocking) if it must be renewed."""
        token = self.valid(time.monotonic())
        if token is not None:
            return token
        token = self.begin_renewal()
        if token is not None:
            return token
        started = time.monotonic()
        try:
            token, granted = self._fetch(self.ttl)
        except IMDSError as exc:
            self.renewal_failed(exc)
            raise
        except BaseException:
            self.abandon()
            raise
        self.renewed(token, granted, started)
        return token

    def begin_renewal(self) -> Optional[str]:
        """For a caller that found no valid token: the token, or ``None``: the caller renews it.

        Waits while another thread renews, and returns what it got or raises
        its failure. ``None`` makes the caller the one renewing, until it
        calls ``renewed``, ``renewal_failed`` or ``abandon``. The thread
        already renewing (a read that started from a pass's own callback) is
        not made to wait for itself.
        """
        me = threading.get_ident()
        with self._lock:
            failed_before = self._failure
            while self._renewer is not None and self._renewer != me:
                self._renewal_ended.wait()
            token = self.valid(time.monotonic())
            if token is not None:
                return token
            failure = self._failure
            if failure is not None and failure is not failed_before:
                raise failure  # the renewal this thread waited for failed
            self._renewer = me
            return None

    def renewed(self, token: str, granted: int, started: float) -> None:
        """End a renewal with ``token``, granted ``granted`` seconds from ``started``."""
        lifetime = max(1, min(granted, self.ttl))
        with self._lock:
            self._failure = None
            # Renew a tenth of the lifetime early (at most a minute) so a
            # request never leaves with a token about to expire in flight.
            self._current = (token, started + lifetime - min(60.0, lifetime / 10.0))
            self._end_renewal()

    def renewal_failed(self, failure: IMDSError) -> None:
        with self._lock:
            self._failure = failure
            self._end_renewal()

    def abandon(self) -> None:
        """End a renewal without a result (it was cut short by a bug or an interrupt)."""
        with self._lock:
            self._end_renewal()

    def _end_renewal(self) -> None:
        self._renewer = None
        self._renewal_ended.notify_all()

    def invalidate(self, token: Optional[str]) -> None:
        """Forget ``token`` unless another thread already replaced it."""
        with self._lock:
            current = self._current
            if token is None or (current is not None and current[0] == token):
                self._current = None
            if token is None:
                self._failure = None

    def clear(self) -> None:
        self.invalidate(None)

    def adopt(self, other: TokenProvider) -> None:
        """Take the token ``other`` holds, if any (one endpoint, two clients).

        A caller that probed an endpoint with a short-timeout client hands its
        token to the long-lived client, so the first real read costs no token.
        """
        current = other._current
        if current is not None:
            with self._lock:
                self._current = current
                self._failure = None


def token_request(ttl: int) -> Job:
    """The token PUT, asking for ``ttl`` seconds."""
    return Job("PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: str(ttl)}, TOKEN_PATH)


def token_from(outcome: SendOutcome, ttl: int, settings: Settings) -> Tuple[str, int]:
    """The token and the lifetime granted, from the token PUT's last outcome (after retries).

    Raises the ``TokenError`` that says why there is none (a timeout: the
    ``TokenTimeoutError`` naming the hop limit), or the transport's own
    error (refused, reset).
    """
    if isinstance(outcome, IMDSTimeoutError):
        raise TokenTimeoutError(
            "IMDS token request to {} timed out after {} attempt(s) of {:g}s: "
            "not on EC2; or IMDS answers slower than that (raise the timeout: "
            "--timeout, timeout= or AWS_METADATA_SERVICE_TIMEOUT); or {}".format(
                settings.endpoint, settings.attempts, settings.timeout, HOP_LIMIT_HINT
            )
        )
    if isinstance(outcome, IMDSHTTPError):
        raise TokenError(
            "IMDS refused the token request with {} after {} attempt(s)".format(
                outcome.status, settings.attempts
            ),
            outcome.status,
        )
    if isinstance(outcome, IMDSError):
        raise outcome
    response = outcome
    if response.status == 200:
        if len(response.body) > MAX_TOKEN:
            # Every request would carry it: refused, however well formed.
            raise TokenError(
                "IMDS answered the token request with {} bytes (a token is at most {})".format(
                    len(response.body), MAX_TOKEN
                ),
                200,
            )
        token = response.body.decode("latin-1").strip()
        if not token:
            raise TokenError("IMDS answered the token request with an empty token", 200)
        if not _TOKEN.match(token):
            # It goes into a header line: a space, a line break or a
            # non-ASCII byte would garble every request that carries it.
            raise TokenError("IMDS answered the token request with a malformed token", 200)
        granted = response.headers.get(TOKEN_TTL_HEADER.lower(), "")
        try:
            return token, int(granted)
        except ValueError:
            return token, ttl
    if response.status in NO_V2_STATUSES:
        why = {
            403: "IMDS is turned off for this instance, or the request was forwarded",
            404: "this endpoint does not support IMDSv2",
            405: "this endpoint does not support IMDSv2",
        }[response.status]
        if response.status != 403 and not settings.allow_imdsv1:
            why += (
                " (falling back to IMDSv1 is off: allow it with allow_imdsv1=True "
                "or AWS_EC2_METADATA_V1_DISABLED=false)"
            )
        raise TokenError(
            "IMDS refused the token request ({}): {}".format(response.status, why),
            response.status,
        )
    if response.status == 400:
        # The TTL was validated before sending: 400 is about the request as a whole.
        raise TokenError(
            "IMDS rejected the token request as malformed (400; TTL asked: {} s)".format(ttl),
            400,
        )
    raise TokenError(
        "IMDS answered the token request with {}{}".format(
            response.status,
            # IMDS answers a PUT with 200, 400, 403, 404 or 405, or a retryable 5xx.
            ": {} may not be an instance metadata service".format(settings.endpoint)
            if response.status in (501, 505) or 300 <= response.status < 400
            else "",
        ),
        response.status,
    )
