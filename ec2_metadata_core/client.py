"""The IMDSv2 client: a shared session token, retries, and the scheduler every read runs through.

``IMDSClient.get(path)`` returns the body as bytes, ``None`` when IMDS says the
path is absent (404), and raises an ``IMDSError`` when the value could not be
read. One client serves any number of threads with one token.

Every request, a single attribute read as much as a whole gather or the token
PUT, goes through one loop, ``IMDSClient._run``: it stamps the current token
on each request as it leaves and hands it to the transport, and, as outcomes
come back, retries with back-off inside each request's deadline and the
pass's retry quota, and queues what ``follow`` says an answer revealed. How
many go out at once follows TCP's congestion control (``Window``): the real
service answers each request on a connection of its own, caps simultaneous
connections and throttles, so the danger is a burst.

Below the loop, the standard-library transport (``wire``) keeps its requests
in flight on non-blocking sockets driven from the loop's own thread
(``wire.Engine``); a caller's ``requests.Session`` or ``urllib3.PoolManager``
(``compat``) sends blocking, so each of its requests runs on a worker thread
(``_Threaded``). Both answer the loop the same way: ``submit`` a job,
``collect`` the ones that ended.
"""

from __future__ import annotations

import heapq
import os
import queue
import re
import sys
import threading
import time
from collections import deque
from typing import (
    TYPE_CHECKING,
    Callable,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Set,
    Tuple,
    Union,
)

from . import config
from .bounds import DEADLINE_ROUNDS, MAX_PASS_BYTES, MAX_TOKEN
from .errors import (
    HOP_LIMIT_HINT,
    ConfigError,
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    LimitError,
    MetadataDisabledError,
    TokenError,
    TokenTimeoutError,
)
from .wire import DIGITS, Done, Engine, Job, Outcome, Response, StdlibTransport, Transport

if TYPE_CHECKING:  # pragma: no cover
    import requests


def _debug(message: str, *args: object) -> None:
    """Log at DEBUG, if the program uses ``logging`` at all.

    Importing logging costs a CLI run or an Ansible module several
    milliseconds; a program that never imported it has no handler to see this.
    """
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(__name__).debug(message, *args)


TOKEN_PATH = "/latest/api/token"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
RETRYABLE_STATUSES = frozenset((429, 500, 502, 503, 504))
# Statuses of the token PUT that mean "this endpoint has no IMDSv2".
NO_V2_STATUSES = frozenset((403, 404, 405))
BACKOFF_BASE = 0.05
# Back-off spans a throttle window (IMDS counts requests per second).
BACKOFF_CAP = 1.0
# A request the service answered with 429/5xx, or cut at a connection cap,
# may retry this many times more than ``attempts`` allows (within its
# deadline and the pass's quota): the service is there, only busy.
# ``attempts=1`` still means no retry at all. A throttle that counts
# requests, not seconds, can answer 429 to twenty in a row; the last
# request of a gather, alone by then, meets all twenty.
THROTTLED_TRIES_FACTOR = 15
# The longest a busy answer's own back-off waits (full jitter, below it). The
# window already slows the whole client down when the service is busy (docs/imds.md:
# back off as a whole); each request's own wait only spreads the retries.
BUSY_BACKOFF_CAP = 0.25
# Retries one pass may spend, shared by all its requests (the AWS SDKs'
# retry quota): RETRY_QUOTA, plus RETRY_SHARE for each request of the pass;
# each retry costs one, each clean answer earns one back.
RETRY_QUOTA = 100
RETRY_SHARE = 3
# A token travels in a header line: visible ASCII only.
_TOKEN = re.compile(r"[\x21-\x7e]+\Z")


Body = Union[Optional[bytes], IMDSError]
Follow = Callable[[str, Optional[bytes]], Iterable[str]]
# What the loop does with an outcome: nothing more, or these jobs (a retry,
# what an answer revealed).
Settle = Callable[[Job, Outcome], Iterable[Job]]

# Requests in flight at the start of a client's first pass; the window grows
# from here, and the next pass starts where the last one ended.
INITIAL_WINDOW = 4
# Signs of congestion closer together than this are one episode.
EPISODE = 0.005
# Least and most time between two sends once one in flight is still too many
# (at most: 50 requests a second, well under what IMDS serves an instance).
MIN_GAP = 0.002
MAX_GAP = 0.02
# Statuses that mean "too much, slow down".
THROTTLE_STATUSES = frozenset((429, 503))


def retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` in seconds (delta form; an HTTP date is taken as 1 s), at most 60."""
    if value is None:
        return None
    value = value.strip()
    if DIGITS.match(value):
        return min(60.0, float(int(value)))
    return 1.0 if value else None


class Window:
    """How fast requests may go: TCP's congestion window, then a gap between sends.

    The number in flight grows by one per clean answer up to the threshold
    (slow start), then by one per window's worth. A sign of congestion (a
    reset, a refused or slow connect, a 429/503, a timeout) halves it. Once
    it is down to one, a sign sets a gap between sends instead (a rate limit
    counts requests per second, and one request at a time can still exceed
    it): the pace of the clean answers of the last second, a little under,
    or double the gap when nothing came back clean; clean answers close the
    gap again little by little. Signs count once per episode: not from a
    request sent before the last cut, nor within a round trip (at least
    ``EPISODE``) of it. A ``Retry-After`` holds every send back that long.
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


# Seconds a worker thread waits for work before it ends.
WORKER_IDLE = 30.0
# A sent job comes back to its pass as (job, outcome, sent at); an exception
# other than an IMDSError is a bug, raised in the caller's thread.
_Done = Tuple[Job, Union[Outcome, Exception], float]
# What a worker runs: transport, job, timeout, sent at, where the outcome goes.
_Task = Tuple[Transport, Job, float, float, "queue.SimpleQueue[_Done]"]


class _Workers:
    """The threads that run blocking sends, shared by every client of the process.

    Created on demand (never more than the sends in flight at once) and kept
    for the next pass, up to ``WORKER_IDLE`` seconds without work: a watcher's
    polls reuse them, and a process that gathered once is soon left without
    threads (``fork`` warns about them on Python 3.12). A forked child (a Salt
    job) starts afresh: threads do not survive ``fork``, and a lock one of
    them held would never be released.
    """

    def __init__(self) -> None:
        self._forked()

    def _forked(self) -> None:
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._pid = os.getpid()

    def submit(
        self,
        transport: Transport,
        job: Job,
        timeout: float,
        now: float,
        done: queue.SimpleQueue[_Done],
    ) -> None:
        if self._pid != os.getpid():  # where os.register_at_fork is missing
            self._forked()
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._tasks.put((transport, job, timeout, now, done))
        if spawn:
            threading.Thread(target=self._work, name="imds-send", daemon=True).start()

    def _work(self) -> None:
        tasks, lock = self._tasks, self._lock
        while True:
            try:
                transport, job, timeout, sent_at, done = tasks.get(timeout=WORKER_IDLE)
            except queue.Empty:
                with lock:
                    if self._idle > 0:  # else a task is on its way to this thread
                        self._idle -= 1
                        return
                continue
            outcome: Union[Outcome, Exception]
            try:
                outcome = transport.send(job, timeout)
            except Exception as exc:  # an IMDSError, or a bug the caller's thread re-raises
                outcome = exc
            with lock:
                self._idle += 1
            done.put((job, outcome, sent_at))


_workers = _Workers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_workers._forked)


class _Threaded:
    """A blocking transport's sends, run on the worker threads; the face of ``wire.Engine``."""

    def __init__(self, transport: Transport, timeout: float) -> None:
        self.transport = transport
        self.timeout = timeout
        self.done: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self.out = 0

    def submit(self, job: Job, now: float, until: Optional[float] = None) -> None:
        timeout = self.timeout if until is None else max(0.001, min(self.timeout, until - now))
        _workers.submit(self.transport, job, timeout, now, self.done)
        self.out += 1

    def collect(self, wait: Optional[float]) -> List[Done]:
        try:
            first = self.done.get() if wait is None else self.done.get(timeout=max(0.0, wait))
        except queue.Empty:
            return []
        finished = [first]
        while True:
            try:
                finished.append(self.done.get_nowait())
            except queue.Empty:
                break
        self.out -= len(finished)
        outcomes: List[Done] = []
        for job, outcome, sent_at in finished:
            if not isinstance(outcome, (Response, IMDSError)):
                self.close()
                raise outcome  # a bug in the transport: the caller's thread sees it
            outcomes.append((job, outcome, sent_at))
        return outcomes

    def close(self) -> None:
        while self.out:  # sends still out end quietly (their own timeout bounds them)
            self.done.get()
            self.out -= 1


class _Key(NamedTuple):
    """What a request is for; rides on its ``Job`` through retries."""

    path: str  # under /latest/ for reads, the full path for the token PUT
    started: float  # monotonic time of the first send (0 before it), for the deadline
    renewed: bool = False  # already retried once after a 401
    failures: int = 0  # attempts that failed for a reason other than throttling
    until: float = float("inf")  # the pass's deadline (monotonic), set as it joins the pass


def _backoff(attempt: int, cap: float = BACKOFF_CAP) -> float:
    """Full-jitter exponential back-off, as AWS recommends for throttling."""
    import random  # only a retry needs it

    return random.uniform(0, min(cap, BACKOFF_BASE * (2 ** min(attempt, 16))))


def busy_tries(attempts: int) -> int:
    """Tries a request gets while the service answers 429/5xx (see ``THROTTLED_TRIES_FACTOR``)."""
    return 1 + (attempts - 1) * THROTTLED_TRIES_FACTOR


class _RetryQuota:
    """The retries one pass may still spend (see ``RETRY_QUOTA``)."""

    __slots__ = ("ceiling", "left")

    def __init__(self) -> None:
        self.left = self.ceiling = RETRY_QUOTA

    def grow(self) -> None:
        """One more request in the pass: it brings its share of retries."""
        self.left += RETRY_SHARE
        self.ceiling += RETRY_SHARE

    def earn(self) -> None:
        if self.left < self.ceiling:
            self.left += 1

    def spend(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class TokenProvider:
    """Holds one session token; fetches it once however many threads ask.

    The token is renewed shortly before the TTL the service granted runs out,
    and on demand after a 401 (``invalidate``). Threads that queued behind a
    fetch that failed get that failure instead of each repeating the fetch
    (a silent endpoint would otherwise cost every thread the full timeout).
    """

    def __init__(self, fetch: Callable[[int], Tuple[str, int]], ttl: int) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._lock = threading.Lock()
        # (token, renew at) in one attribute so lock-free readers see a pair.
        self._current: Optional[Tuple[str, float]] = None
        self._failure: Optional[IMDSError] = None  # the last fetch's, until one succeeds

    def __repr__(self) -> str:
        state = "held" if self._current is not None else "none"
        return "TokenProvider(ttl={}, token={})".format(self._ttl, state)

    def _valid(self) -> Optional[str]:
        current = self._current
        if current is not None and time.monotonic() < current[1]:
            return current[0]
        return None

    def get(self) -> str:
        token = self._valid()
        if token is not None:
            return token
        failed_before = self._failure
        with self._lock:
            token = self._valid()
            if token is not None:
                return token
            failure = self._failure
            if failure is not None and failure is not failed_before:
                raise failure  # a fetch failed while this thread waited for it
            started = time.monotonic()
            try:
                token, granted = self._fetch(self._ttl)
            except IMDSError as exc:
                self._failure = exc
                raise
            self._failure = None
            lifetime = max(1, min(granted, self._ttl))
            # Renew a tenth of the lifetime early (at most a minute) so a
            # request never leaves with a token about to expire in flight.
            self._current = (token, started + lifetime - min(60.0, lifetime / 10.0))
            return token

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


class IMDSClient:
    """Reads paths under ``/latest/`` from IMDS, IMDSv2 first.

    Settings come from ``config.resolve`` (arguments win over the AWS
    environment variables and shared config). ``session`` switches the
    transport to that ``requests.Session``.
    """

    def __init__(
        self,
        session: Optional[requests.Session] = None,
        settings: Optional[config.Settings] = None,
        transport: Optional[Transport] = None,
        **overrides: object,
    ) -> None:
        if settings is None:
            settings = config.Settings.from_mapping(overrides)
        elif overrides:
            raise ConfigError("{}= goes into settings=, not beside it".format(sorted(overrides)[0]))
        self.settings = settings
        if transport is None:
            if session is not None:
                from .compat import RequestsTransport

                transport = RequestsTransport(self.settings.endpoint, session)
            else:
                transport = StdlibTransport(self.settings.endpoint)
        self.transport = transport
        self.tokens = TokenProvider(self._fetch_token, self.settings.token_ttl)
        self._v1 = False  # set once the token PUT proved IMDSv2 absent and v1 is allowed
        # The congestion window the last pass ended with. The next one starts
        # there, as TCP caches a route's window: a long-lived client's
        # repeated small reads (a watcher's polls) then go out in one round.
        self._window = float(INITIAL_WINDOW)

    def __repr__(self) -> str:
        return "IMDSClient(endpoint={!r}, timeout={:g}, attempts={})".format(
            self.settings.endpoint, self.settings.timeout, self.settings.attempts
        )

    # -- the token ---------------------------------------------------------

    def _fetch_token(self, ttl: int) -> Tuple[str, int]:
        try:
            response = self._send("PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: str(ttl)})
        except IMDSTimeoutError:
            raise TokenTimeoutError(
                "IMDS token request to {} timed out after {} attempt(s) of {:g}s: "
                "not on EC2; or IMDS answers slower than that (raise the timeout: "
                "--timeout, timeout= or AWS_METADATA_SERVICE_TIMEOUT); or {}".format(
                    self.settings.endpoint,
                    self.settings.attempts,
                    self.settings.timeout,
                    HOP_LIMIT_HINT,
                )
            ) from None
        except IMDSHTTPError as exc:
            raise TokenError(
                "IMDS refused the token request with {} after {} attempt(s)".format(
                    exc.status, self.settings.attempts
                ),
                exc.status,
            ) from None
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
            if response.status != 403 and not self.settings.allow_imdsv1:
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
                ": {} may not be an instance metadata service".format(self.settings.endpoint)
                if response.status in (501, 505) or 300 <= response.status < 400
                else "",
            ),
            response.status,
        )

    def _token_headers(self) -> Tuple[Dict[str, str], Optional[str]]:
        if self._v1:
            return {}, None
        try:
            token = self.tokens.get()
        except TokenError as exc:
            if self.settings.allow_imdsv1 and exc.status in NO_V2_STATUSES | {400}:
                _debug("IMDSv2 unavailable (%s); falling back to IMDSv1 as allowed", exc.status)
                self._v1 = True
                return {}, None
            raise
        return {TOKEN_HEADER: token}, token

    # -- requests ----------------------------------------------------------

    def _classify(
        self, job: Job, outcome: Outcome, quota: _RetryQuota
    ) -> Union[Response, IMDSError, Job]:
        """An answer, a final error, or the same request again after back-off.

        Failures without an answer (timeouts, refused or broken
        connections) are retried until ``settings.attempts``. An answer that
        asks for a retry (429, 5xx) or a connection cut at a cap before any
        answer says the service is there and busy: those may take
        ``THROTTLED_TRIES_FACTOR`` times as many retries, and wait at least the
        ``Retry-After`` the service sent. Every retry stays inside the
        request's deadline (every attempt's timeout plus back-off, from its
        first send) and spends the pass's ``quota``.
        """
        if isinstance(outcome, Response) and outcome.status not in RETRYABLE_STATUSES:
            quota.earn()
            return outcome
        error = (
            outcome if isinstance(outcome, IMDSError) else IMDSHTTPError(job.path, outcome.status)
        )
        attempts = self.settings.attempts
        key: _Key = job.key
        tries = job.tries + 1
        if job.throttled or isinstance(outcome, Response):
            failures = key.failures
            pause = _backoff(tries, BUSY_BACKOFF_CAP)
            if isinstance(outcome, Response):
                asked = retry_after(outcome.headers.get("retry-after"))
                pause = pause if asked is None else max(pause, asked)
            out_of_tries = tries >= busy_tries(attempts)
        else:
            failures = key.failures + 1
            pause = _backoff(failures)
            out_of_tries = failures >= attempts
        resend_at = time.monotonic() + pause
        if out_of_tries or resend_at >= self._give_up_at(key):
            return error
        if not quota.spend():
            _debug("retry quota spent; %s %s fails", job.method, job.path)
            return error
        _debug(
            "retrying %s %s after %s (try %d)",
            job.method,
            job.path,
            type(error).__name__,
            tries,
        )
        retry_key = key._replace(failures=failures)
        return Job(retry_key, job.method, job.path, job.headers, resend_at, tries)

    def _give_up_at(self, key: _Key) -> float:
        """When a request stops retrying: its own deadline (every attempt's timeout
        plus back-off, from its first send), or its pass's if sooner."""
        settings = self.settings
        return min(key.started + settings.attempts * (settings.timeout + BACKOFF_CAP), key.until)

    def pass_seconds(self) -> float:
        """How long one pass (a gather, a read) may take: ``settings.deadline``, or by default
        ``bounds.DEADLINE_ROUNDS`` times one request's worst case."""
        settings = self.settings
        if settings.deadline is not None:
            return settings.deadline
        return DEADLINE_ROUNDS * settings.attempts * (settings.timeout + BACKOFF_CAP)

    def _send(self, method: str, path: str, headers: Dict[str, str]) -> Response:
        """One request, retried as ``_classify`` says; raises its final error."""
        if self.settings.disabled:
            raise MetadataDisabledError()
        results: List[Outcome] = []
        quota = _RetryQuota()

        def settle(job: Job, outcome: Outcome) -> Iterable[Job]:
            result = self._classify(job, outcome, quota)
            if isinstance(result, Job):
                return [result]
            results.append(result)
            return []

        self._run([Job(_Key(path, 0.0), method, path, headers)], 1, settle)
        if isinstance(results[0], IMDSError):
            raise results[0]
        return results[0]

    def _run(self, jobs: Iterable[Job], limit: int, settle: Settle) -> None:
        """The scheduler: send ``jobs``, at most ``limit`` at once (fewer while congested).

        Each job leaves stamped with the token current at that moment (it may
        have queued a while); its outcome comes back here, tells the window
        how the service is doing (``_signal``), and goes to ``settle``, whose
        further jobs (a retry after back-off, what an answer revealed) join
        the queue, those ready now at its head: dependent reads are a
        gather's critical path. ``settings.timeout`` covers one attempt (the
        transport enforces it); the deadline over attempts runs from a job's
        first send. The whole pass ends by its deadline (``pass_seconds``):
        no attempt outlasts it, and what has not left by then fails.
        """
        transport = self.transport
        limit = min(limit, transport.concurrency or limit)
        # A transport that multiplexes its own sockets (the standard library's)
        # runs on this thread; any other blocks a worker thread per send.
        engine = getattr(transport, "engine", None)
        sender: Union[Engine, _Threaded] = (
            engine(self.settings.timeout)
            if engine is not None
            else _Threaded(transport, self.settings.timeout)
        )
        window = Window(limit, self._window)
        ready: Deque[Job] = deque()
        later: List[Tuple[float, int, Job]] = []  # a heap of jobs waiting for their time
        order = 0
        in_flight = 0
        token_failure: Optional[IMDSError] = None  # the first of this pass
        deadline = time.monotonic() + self.pass_seconds()

        def enqueue(new: Iterable[Job], first: bool) -> None:
            nonlocal order
            now = time.monotonic()
            now_ready = []
            for job in new:
                if job.key.until > deadline:
                    job.key = job.key._replace(until=deadline)
                if job.not_before > now:
                    order += 1
                    heapq.heappush(later, (job.not_before, order, job))
                else:
                    now_ready.append(job)
            if first:
                ready.extendleft(reversed(now_ready))
            else:
                ready.extend(now_ready)

        enqueue(jobs, False)
        try:
            while ready or later or in_flight:
                now = time.monotonic()
                while later and later[0][0] <= now:
                    ready.append(heapq.heappop(later)[2])
                while ready and now >= deadline:  # out of time: what has not left fails
                    job = ready.popleft()
                    enqueue(settle(job, self._late(job)), True)
                while ready and window.allows(in_flight, now):
                    job = ready.popleft()
                    # A token failure is every later request's in the pass,
                    # rather than each paying for another failing token request.
                    failure = token_failure if TOKEN_HEADER in job.headers else None
                    if failure is None:
                        try:
                            self._stamp(job)
                        except IMDSError as exc:
                            failure = token_failure = exc
                    if failure is not None:
                        enqueue(settle(job, failure), True)
                        continue
                    job.throttled, job.resent = False, 0
                    now = time.monotonic()
                    window.sent(now)
                    sender.submit(job, now, job.key.until)
                    in_flight += 1
                wake: Optional[float] = None
                if later:
                    wake = later[0][0]
                if ready and in_flight < int(window.size):
                    wake = window.next_send if wake is None else min(wake, window.next_send)
                if ready:
                    wake = deadline if wake is None else min(wake, deadline)
                if not in_flight:
                    if wake is not None:
                        time.sleep(max(0.0, wake - time.monotonic()))
                    continue
                wait = None if wake is None else wake - time.monotonic()
                for job, outcome, sent_at in sender.collect(wait):
                    in_flight -= 1
                    self._signal(window, job, outcome, sent_at)
                    enqueue(settle(job, outcome), True)
        finally:
            # A pass held down by its own limit (the token PUT: one request)
            # learned nothing about the route: the window it carries stays.
            self._window = window.size if window.size < limit else max(self._window, window.size)
            sender.close()

    def _late(self, job: Job) -> IMDSError:
        return IMDSTimeoutError(
            "IMDS did not answer {} {} within the {:g}s a whole read may take "
            "(the deadline setting)".format(job.method, job.path, self.pass_seconds())
        )

    def _signal(self, window: Window, job: Job, outcome: Outcome, sent_at: float) -> None:
        """What an outcome says about congestion (see ``Window``).

        A 429/503, a connect that needed a fresh SYN and any attempt that
        ended without an answer (refused, cut, timed out) are signs. A
        ``Retry-After`` holds every send back only if the request will wait
        that long to retry: one longer than its deadline fails it instead of
        stalling the pass.
        """
        now = time.monotonic()
        if not isinstance(outcome, Response) or job.resent:
            window.congested(sent_at, now, None)
        if isinstance(outcome, Response):
            if outcome.status in THROTTLE_STATUSES:
                pause = retry_after(outcome.headers.get("retry-after"))
                if pause is not None and now + pause >= self._give_up_at(job.key):
                    pause = None
                window.congested(sent_at, now, pause)
            elif outcome.status < 500:
                window.clean(now)

    def _stamp(self, job: Job) -> None:
        """Ready ``job`` to leave: its deadline starts, its token is the current one."""
        key: _Key = job.key
        if not key.started:
            # The deadline runs from the first send, not from time in the queue.
            job.key = key._replace(started=time.monotonic())
        if TOKEN_HEADER not in job.headers:
            return  # the token PUT itself, or IMDSv1
        token = self.tokens.get()
        if job.headers[TOKEN_HEADER] != token:
            job.headers = {TOKEN_HEADER: token}

    def fetch(self, paths: Iterable[str], follow: Optional[Follow] = None) -> Dict[str, Body]:
        """Read many paths under ``/latest/`` in one pipelined pass.

        Up to ``settings.max_concurrency`` requests are in flight (fewer
        while the service pushes back, see ``Window``), with one token.
        ``follow(path, body)`` runs in the calling thread as each answer
        arrives (body ``None`` for 404) and names further paths to read, so
        dependent reads (a listing, then its entries) start at once.
        Returns every path's body, ``None`` if absent, or the ``IMDSError`` that
        kept it from being read. Each request leaves with the token current at
        that moment (requests queue, and a short-lived token can expire while
        they wait); a 401 renews the token and retries once. A token error
        before the first request is raised: without a token nothing can be read.
        """
        if self.settings.disabled:
            raise MetadataDisabledError()
        self._token_headers()  # fail fast: without a token nothing can be read
        outcomes: Dict[str, Body] = {}
        queued: Set[str] = set()
        unstamped = {} if self._v1 else {TOKEN_HEADER: ""}
        quota = _RetryQuota()
        received = [0]  # bytes of the bodies of this pass, against MAX_PASS_BYTES

        def jobs_for(new_paths: Iterable[str]) -> Iterator[Job]:
            for path in new_paths:
                if path not in queued:
                    queued.add(path)
                    quota.grow()
                    yield Job(_Key(path, 0.0), "GET", "/latest/" + path, unstamped)

        def settle(job: Job, outcome: Outcome) -> Iterable[Job]:
            key: _Key = job.key
            if isinstance(outcome, TokenError):
                outcomes[key.path] = outcome  # from stamping; retried already
                return []
            result = self._classify(job, outcome, quota)
            if isinstance(result, Job):
                return [result]
            if isinstance(result, IMDSError):
                outcomes[key.path] = result
                return []
            if result.status == 401 and not key.renewed and TOKEN_HEADER in job.headers:
                _debug("IMDS answered 401 for %s; renewing the token", job.path)
                self.tokens.invalidate(job.headers[TOKEN_HEADER])
                return [Job(key._replace(renewed=True), "GET", job.path, unstamped)]
            if result.status not in (200, 404):
                outcomes[key.path] = IMDSHTTPError(job.path, result.status)
                return []
            body = result.body if result.status == 200 else None
            if body is not None:
                received[0] += len(body)
                if received[0] > MAX_PASS_BYTES:
                    outcomes[key.path] = LimitError(
                        job.path, "the answers of one read past {} MiB".format(MAX_PASS_BYTES >> 20)
                    )
                    return []
            outcomes[key.path] = body
            return jobs_for(follow(key.path, body)) if follow is not None else ()

        self._run(jobs_for(paths), self.settings.max_concurrency, settle)
        return outcomes

    def get(self, path: str) -> Optional[bytes]:
        """The body at ``/latest/<path>``; ``None`` if absent (404); raises if it failed."""
        outcome = self.fetch([path])[path]
        if isinstance(outcome, IMDSError):
            raise outcome
        return outcome

    def get_many(self, paths: Iterable[str]) -> Dict[str, Optional[bytes]]:
        """``fetch`` for callers that want a failure raised (the first, in path order)."""
        outcomes = self.fetch(paths)
        for outcome in outcomes.values():
            if isinstance(outcome, IMDSError):
                raise outcome
        return outcomes  # type: ignore[return-value]

    def prime_token(self) -> None:
        """Fetch the token now (or confirm the IMDSv1 fallback), ahead of reads."""
        self._token_headers()

    def clear_token(self) -> None:
        self.tokens.clear()
        self._v1 = False

    def close(self) -> None:
        self.transport.close()
