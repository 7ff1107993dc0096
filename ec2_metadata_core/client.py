"""The IMDSv2 client: the one scheduler every read runs through.

``IMDSClient.get(path)`` returns the body as bytes, ``None`` when IMDS says the
path is absent (404), and raises an ``IMDSError`` when the value could not be
read. One client serves any number of threads with one token.

Every request, a single attribute read as much as a whole gather or the token
PUT, goes out in a pass of one loop, ``IMDSClient._run``: it takes the jobs
ready in its queue (``_Queue``), stamps the current token on each as it
leaves (``_PassToken``, which renews the token as a request of the same
pass), and hands it to a sender; as outcomes come back it tells the
congestion window how the service is doing, retries with back-off inside
each request's deadline and the pass's retry quota (``_answered``), and
queues what ``follow`` says an answer revealed.

The pieces around it: ``transport`` the contract between this loop and a
transport; ``wire`` the standard-library transport, whose ``Engine`` keeps
its requests in flight on non-blocking sockets from this loop's own thread;
``compat`` the transports over a caller's ``requests.Session`` or urllib3
pool, whose blocking sends ``workers`` runs on threads; ``pacing`` the
window, back-off and retry quota; ``tokens`` the session token.
"""

from __future__ import annotations

import heapq
import sys
import time
from collections import deque
from typing import (
    TYPE_CHECKING,
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Optional,
    Set,
    Tuple,
    Union,
)

from . import config
from .bounds import DEADLINE_ROUNDS, MAX_PASS_BYTES
from .errors import (
    ConfigError,
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    LimitError,
    MetadataDisabledError,
    TokenError,
)
from .pacing import (
    BACKOFF_CAP,
    BUSY_BACKOFF_CAP,
    INITIAL_WINDOW,
    RETRYABLE_STATUSES,
    THROTTLE_STATUSES,
    RetryQuota,
    Window,
    backoff,
    busy_tries,
    retry_after,
)
from .tokens import (
    NO_V2_STATUSES,
    TOKEN_HEADER,
    TokenProvider,
    token_from,
    token_request,
)
from .transport import Job, Response, Sender, SendOutcome, Transport
from .wire import StdlibTransport

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


# What a read returns for one path: the body, None for 404, or the error that kept it.
Body = Union[Optional[bytes], IMDSError]
Follow = Callable[[str, Optional[bytes]], Iterable[str]]
# What a pass does with a request's last outcome (after its retries):
# nothing more, or these jobs (what an answer revealed, a 401's second try).
Settle = Callable[[Job, SendOutcome], Iterable[Job]]
# The headers of a read before it is stamped, or of an IMDSv1 read: none.
# Shared by every such job; transports never change a job's headers.
_NO_HEADERS: Dict[str, str] = {}


class _Queue:
    """A pass's jobs not yet sent: those ready, in order, and those waiting for their time.

    A job joins capped at the pass's deadline (``Job.until``). One whose
    ``not_before`` is still ahead (a retry's back-off) waits in a heap by
    that time, and lines up when ``due``; the rest line up in ``ready`` at
    once, at its head if ``first``: what an answer revealed, or a retry, goes
    before the jobs the pass began with (dependent reads are a gather's
    critical path).
    """

    __slots__ = ("deadline", "later", "order", "ready")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline  # monotonic time the pass ends by
        self.ready: Deque[Job] = deque()
        self.later: List[Tuple[float, int, Job]] = []  # a heap: (not before, order joined, job)
        self.order = 0

    def __bool__(self) -> bool:
        return bool(self.ready or self.later)

    def add(self, jobs: Iterable[Job], first: bool = False) -> None:
        now = time.monotonic()
        deadline = self.deadline
        now_ready = []
        for job in jobs:
            if job.until > deadline:
                job.until = deadline
            if job.not_before > now:
                self.order += 1
                heapq.heappush(self.later, (job.not_before, self.order, job))
            else:
                now_ready.append(job)
        if first:
            self.ready.extendleft(reversed(now_ready))
        else:
            self.ready.extend(now_ready)

    def due(self, now: float) -> None:
        """Line up the waiting jobs whose time has come."""
        later, ready = self.later, self.ready
        while later and later[0][0] <= now:
            ready.append(heapq.heappop(later)[2])

    def wake(self, send_at: Optional[float]) -> Optional[float]:
        """When the pass must look again (``None``: only when an answer comes).

        The first waiting job's time; with jobs ready, also the deadline, and
        ``send_at``, when the window lets the next one leave (``None``: when
        an answer makes room).
        """
        wake = self.later[0][0] if self.later else None
        if self.ready:
            soonest = self.deadline if send_at is None else min(send_at, self.deadline)
            wake = soonest if wake is None else min(wake, soonest)
        return wake


class _PassToken:
    """The session token as one pass's requests leave, renewed as a request of that pass.

    Each request that needs the token (``Job.needs_token``) leaves stamped
    with the one current at that moment: requests queue, and a short-lived
    token can run out while they wait. When it has, the pass sends the
    token PUT itself, at the head of its queue, and the requests that need
    the token wait for its answer (``parked``): no pass ever runs inside
    another. A token failure is every later request's in the pass, rather
    than each paying for another failing token request.
    """

    __slots__ = ("client", "failure", "headers", "parked", "put", "queue", "token")

    def __init__(self, client: IMDSClient, queue: _Queue) -> None:
        self.client = client
        self.queue = queue
        self.token: Optional[str] = None  # the token ``headers`` carries
        self.headers = _NO_HEADERS  # shared by every request stamped with that token
        self.put: Optional[Job] = None  # the token PUT this pass sent, until its last outcome
        self.parked: List[Job] = []  # requests waiting for that outcome
        self.failure: Optional[IMDSError] = None  # the pass's token failure, once there is one

    def stamp(self, job: Job, now: float) -> bool:
        """Give ``job`` the current token: True if it may leave now.

        False: it waits for this pass's token PUT, or, if ``failure`` is set,
        it failed with it.
        """
        if self.failure is not None:
            return False
        token = self.client.tokens.valid(now)
        if token is None:
            if self.put is None:
                token = self._renew()
            if token is None:
                if self.failure is None:
                    self.parked.append(job)
                return False
        if token is not self.token:
            self.token, self.headers = token, {TOKEN_HEADER: token}
        job.headers = self.headers
        return True

    def _renew(self) -> Optional[str]:
        """The token another thread renewed meanwhile, or ``None``: the PUT goes out first."""
        tokens = self.client.tokens
        try:
            token = tokens.begin_renewal()
        except IMDSError as exc:
            self.failure = exc
            return None
        if token is None:
            self.put = token_request(tokens.ttl)
            self.queue.add((self.put,), first=True)
        return token

    def answered(self, outcome: SendOutcome) -> List[Job]:
        """The token PUT's last outcome: the parked requests, back to the head of the queue.

        They leave with the new token, or fail with the pass's token failure.
        """
        put, self.put = self.put, None
        tokens = self.client.tokens
        try:
            token, granted = token_from(outcome, tokens.ttl, self.client.settings)
        except IMDSError as exc:
            self.failure = exc
            tokens.renewal_failed(exc)
        else:
            # put is set: this runs only as the answer to the PUT it names
            tokens.renewed(token, granted, put.started if put is not None else time.monotonic())
        parked, self.parked = self.parked, []
        return parked

    def close(self) -> None:
        """The pass ends: a renewal it began and never finished (a bug, an interrupt) ends too."""
        if self.put is not None:
            self.put = None
            self.client.tokens.abandon()


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
        """The token PUT in a pass of its own (for ``tokens.get``, outside a read's pass)."""
        if self.settings.disabled:
            raise MetadataDisabledError()
        outcomes: List[SendOutcome] = []

        def settle(job: Job, outcome: SendOutcome) -> Iterable[Job]:
            outcomes.append(outcome)
            return ()

        self._run([token_request(ttl)], 1, settle, RetryQuota())
        return token_from(outcomes[0], ttl, self.settings)

    def _ensure_token(self) -> None:
        """Hold a token (or know IMDSv1 is the way), fetching it now if need be."""
        if self._v1:
            return
        try:
            self.tokens.get()
        except TokenError as exc:
            if self.settings.allow_imdsv1 and exc.status in NO_V2_STATUSES | {400}:
                _debug("IMDSv2 unavailable (%s); falling back to IMDSv1 as allowed", exc.status)
                self._v1 = True
                return
            raise

    # -- the scheduler -----------------------------------------------------

    def _run(self, jobs: Iterable[Job], limit: int, settle: Settle, quota: RetryQuota) -> None:
        """One pass: send ``jobs``, at most ``limit`` at once (fewer while congested).

        Each job leaves stamped with the token current at that moment
        (``_PassToken``); each outcome tells the window how the service is
        doing and whether the job goes again (``_answered``); a job's last
        outcome goes to ``settle``, whose further jobs join the queue at its
        head (``_Queue``). ``settings.timeout`` covers one attempt (the
        transport enforces it); the deadline over attempts runs from a job's
        first send. The whole pass ends by its deadline (``pass_seconds``):
        no attempt outlasts it, and what has not left by then fails.
        """
        now = time.monotonic()
        limit = min(limit, self.transport.concurrency or limit)
        window = Window(limit, self._window, now)
        queue = _Queue(now + self.pass_seconds())
        token = _PassToken(self, queue)

        def finish(job: Job, outcome: SendOutcome) -> Iterable[Job]:
            """A job's last outcome: the token PUT's is the pass's token, any other the caller's."""
            return token.answered(outcome) if job is token.put else settle(job, outcome)

        queue.add(jobs)
        sender = self._sender()
        in_flight = 0
        try:
            while queue or in_flight:
                now = time.monotonic()
                queue.due(now)
                while queue.ready and now >= queue.deadline:  # out of time: what has not left fails
                    job = queue.ready.popleft()
                    queue.add(finish(job, self._late(job)), first=True)
                while queue.ready and window.allows(in_flight, now):
                    job = queue.ready.popleft()
                    if job.needs_token and not token.stamp(job, now):
                        if token.failure is not None:
                            queue.add(finish(job, token.failure), first=True)
                        continue  # else it waits for the token PUT, now ahead of it
                    if not job.started:
                        job.started = now  # the deadline runs from the first send
                    job.throttled, job.resent = False, 0
                    now = time.monotonic()
                    window.sent(now)
                    sender.submit(job, now, job.until)
                    in_flight += 1
                wake = queue.wake(window.next_send if in_flight < int(window.size) else None)
                if not in_flight:
                    if wake is not None:
                        time.sleep(max(0.0, wake - time.monotonic()))
                    continue
                wait = None if wake is None else wake - time.monotonic()
                for job, outcome, sent_at in sender.collect(wait):
                    in_flight -= 1
                    result = self._answered(window, job, outcome, sent_at, quota)
                    further = (result,) if isinstance(result, Job) else finish(job, result)
                    if further:  # most answers reveal nothing: no queue work for them
                        queue.add(further, first=True)
        finally:
            token.close()
            # A pass held down by its own limit (the token PUT: one request)
            # learned nothing about the route: the window it carries stays.
            self._window = window.size if window.size < limit else max(self._window, window.size)
            sender.close()

    def _sender(self) -> Sender:
        """A transport that multiplexes its own sockets (the standard library's) runs on
        this thread; any other blocks a worker thread per send."""
        engine = getattr(self.transport, "engine", None)
        if engine is not None:
            sender: Sender = engine(self.settings.timeout)
            return sender
        from .workers import Threaded  # only a caller's transport needs threads

        return Threaded(self.transport, self.settings.timeout)

    def _answered(
        self, window: Window, job: Job, outcome: SendOutcome, sent_at: float, quota: RetryQuota
    ) -> Union[SendOutcome, Job]:
        """What one send's outcome says: to the window, and whether ``job`` goes again.

        A 429/503, a connect that needed a fresh SYN and any attempt that
        ended without an answer (refused, cut, timed out) are signs of
        congestion (see ``Window``); an answer below 500 that asks for no
        retry is a clean one. A ``Retry-After`` (parsed once, for both uses)
        holds every send back only if the request will wait that long to
        retry: one longer than its deadline fails it instead of stalling the
        pass. Returns the job itself when it is to be sent again (``_retry``).
        """
        now = time.monotonic()
        if isinstance(outcome, Response):
            status = outcome.status
            if job.resent:
                window.congested(sent_at, now, None)
            if status not in RETRYABLE_STATUSES:
                if status < 500:
                    window.clean(now)
                quota.earn()
                return outcome
            asked = retry_after(outcome.headers.get("retry-after"))
            if status in THROTTLE_STATUSES:
                hold = asked if asked is not None and now + asked < self._give_up_at(job) else None
                window.congested(sent_at, now, hold)
            return self._retry(job, IMDSHTTPError(job.path, status), True, asked, quota, now)
        window.congested(sent_at, now, None)
        return self._retry(job, outcome, job.throttled, None, quota, now)

    def _retry(
        self,
        job: Job,
        error: IMDSError,
        busy: bool,
        asked: Optional[float],
        quota: RetryQuota,
        now: float,
    ) -> Union[IMDSError, Job]:
        """``job`` again after back-off, or its final ``error``.

        Failures without an answer (timeouts, refused or broken connections)
        are retried until ``settings.attempts``. An answer that asks for a
        retry (429, 5xx) or a connection cut at a cap before any answer
        (``busy``) says the service is there and busy: those may take
        ``THROTTLED_TRIES_FACTOR`` times as many retries, and wait at least
        the ``Retry-After`` the service ``asked``. Every retry stays inside
        the request's deadline (every attempt's timeout plus back-off, from
        its first send) and spends the pass's ``quota``.
        """
        attempts = self.settings.attempts
        tries = job.tries + 1
        failures = job.failures
        if busy:
            pause = backoff(tries, BUSY_BACKOFF_CAP)
            if asked is not None:
                pause = max(pause, asked)
            out_of_tries = tries >= busy_tries(attempts)
        else:
            failures += 1
            pause = backoff(failures)
            out_of_tries = failures >= attempts
        resend_at = now + pause
        if out_of_tries or resend_at >= self._give_up_at(job):
            return error
        if not quota.spend():
            _debug("retry quota spent; %s %s fails", job.method, job.path)
            return error
        _debug(
            "retrying %s %s after %s (try %d)", job.method, job.path, type(error).__name__, tries
        )
        job.tries, job.failures, job.not_before = tries, failures, resend_at
        return job

    def _give_up_at(self, job: Job) -> float:
        """When a request stops retrying: its own deadline (every attempt's timeout
        plus back-off, from its first send), or its pass's if sooner."""
        settings = self.settings
        return min(job.started + settings.attempts * (settings.timeout + BACKOFF_CAP), job.until)

    def pass_seconds(self) -> float:
        """How long one pass (a gather, a read) may take: ``settings.deadline``, or by default
        ``bounds.DEADLINE_ROUNDS`` times one request's worst case."""
        settings = self.settings
        if settings.deadline is not None:
            return settings.deadline
        return DEADLINE_ROUNDS * settings.attempts * (settings.timeout + BACKOFF_CAP)

    def _late(self, job: Job) -> IMDSError:
        return IMDSTimeoutError(
            "IMDS did not answer {} {} within the {:g}s a whole read may take "
            "(the deadline setting)".format(job.method, job.path, self.pass_seconds())
        )

    # -- reads -------------------------------------------------------------

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
        self._ensure_token()  # fail fast: without a token nothing can be read
        outcomes: Dict[str, Body] = {}
        queued: Set[str] = set()
        needs_token = not self._v1
        quota = RetryQuota()
        received = [0]  # bytes of the bodies of this pass, against MAX_PASS_BYTES

        def jobs_for(new_paths: Iterable[str]) -> List[Job]:
            jobs = []
            for path in new_paths:
                if path not in queued:
                    queued.add(path)
                    quota.grow()
                    jobs.append(Job("GET", "/latest/" + path, _NO_HEADERS, path, needs_token))
            return jobs

        def settle(job: Job, outcome: SendOutcome) -> Iterable[Job]:
            path = job.key
            if isinstance(outcome, IMDSError):
                outcomes[path] = outcome
                return ()
            status = outcome.status
            if status == 401 and job.needs_token and not job.renewed:
                _debug("IMDS answered 401 for %s; renewing the token", job.path)
                self.tokens.invalidate(job.headers[TOKEN_HEADER])
                job.renewed, job.tries, job.not_before = True, 0, 0.0
                return (job,)
            if status not in (200, 404):
                outcomes[path] = IMDSHTTPError(job.path, status)
                return ()
            body = outcome.body if status == 200 else None
            if body is not None:
                received[0] += len(body)
                if received[0] > MAX_PASS_BYTES:
                    outcomes[path] = LimitError(
                        job.path, "the answers of one read past {} MiB".format(MAX_PASS_BYTES >> 20)
                    )
                    return ()
            outcomes[path] = body
            return jobs_for(follow(path, body)) if follow is not None else ()

        self._run(jobs_for(paths), self.settings.max_concurrency, settle, quota)
        return outcomes

    def get(self, path: str) -> Optional[bytes]:
        """The body at ``/latest/<path>``; ``None`` if absent (404); raises if it failed."""
        outcome = self.fetch([path])[path]
        if isinstance(outcome, IMDSError):
            raise outcome
        return outcome

    def get_many(self, paths: Iterable[str]) -> Dict[str, Optional[bytes]]:
        """``fetch`` for callers that want a failure raised, the bodies in the order asked.

        When several paths fail, the error raised is that of the first of
        them in ``paths``' order, whichever request ended first.
        """
        asked = list(paths)
        outcomes = self.fetch(asked)
        bodies: Dict[str, Optional[bytes]] = {}
        for path in asked:
            outcome = outcomes[path]
            if isinstance(outcome, IMDSError):
                raise outcome
            bodies[path] = outcome
        return bodies

    def prime_token(self) -> None:
        """Fetch the token now (or confirm the IMDSv1 fallback), ahead of reads."""
        self._ensure_token()

    def clear_token(self) -> None:
        self.tokens.clear()
        self._v1 = False

    def close(self) -> None:
        self.transport.close()
