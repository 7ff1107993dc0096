"""How fast and how often requests go: the congestion window, retries and their quota, back-off.

The real service answers each request on a connection of its own, caps
simultaneous connections and throttles (docs/imds.md, "On the wire"), so
the danger is a burst: how many go out at once follows TCP's congestion
control (``Window``). A request that failed goes again after a full-jitter
back-off, within its tries (``busy_tries`` when the service said it is
busy), its deadline and its pass's ``RetryQuota``; the scheduler
(``client``) applies all of these. Within one attempt, the standard-library
transport (``wire``) sends a fresh SYN, or the request again, after TCP's
retransmission timeout over what it measured (``SynTimer``).
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Optional

from .transport import DIGITS

# Statuses that ask for the request again.
RETRYABLE_STATUSES = frozenset((429, 500, 502, 503, 504))
# Statuses that mean "too much, slow down".
THROTTLE_STATUSES = frozenset((429, 503))
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

# Requests in flight at the start of a client's first pass; the window grows
# from here, and the next pass starts where the last one ended.
INITIAL_WINDOW = 4
# Signs of congestion closer together than this are one episode.
EPISODE = 0.005
# Least and most time between two sends once one in flight is still too many
# (at most: 50 requests a second, well under what IMDS serves an instance).
MIN_GAP = 0.002
MAX_GAP = 0.02


def retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` in seconds (delta form; an HTTP date is taken as 1 s), at most 60."""
    if value is None:
        return None
    value = value.strip()
    if DIGITS.match(value):
        return min(60.0, float(int(value)))
    return 1.0 if value else None


def backoff(attempt: int, cap: float = BACKOFF_CAP) -> float:
    """Full-jitter exponential back-off, as AWS recommends for throttling."""
    import random  # only a retry needs it

    return random.uniform(0, min(cap, BACKOFF_BASE * (2 ** min(attempt, 16))))


def busy_tries(attempts: int) -> int:
    """Tries a request gets while the service answers 429/5xx (see ``THROTTLED_TRIES_FACTOR``)."""
    return 1 + (attempts - 1) * THROTTLED_TRIES_FACTOR


class RetryQuota:
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
    Times are the scheduler's monotonic clock; ``now`` is when the pass began.
    """

    def __init__(self, limit: int, start: float, now: float) -> None:
        self.limit = max(1, limit)
        self.size = float(max(1.0, min(start, self.limit)))
        self.threshold = float(self.limit)
        self.gap = 0.0
        self.cut_at = -1.0
        self.calm_at = 0.0
        self.next_send = 0.0  # monotonic time the gap or a Retry-After allows
        self.started = now
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


# How long a connect may take before its SYN counts as dropped (a full listen
# queue, the packet cap) and a fresh one goes out, rather than wait for the
# kernel's own resend after 1 s: TCP's retransmission timeout (RFC 6298)
# over the connect times measured on the transport (``SynTimer``). Before
# any measurement, SYN_WAIT_INITIAL; never under SYN_WAIT_FLOOR (a link-local
# service answers a SYN in well under a millisecond: 10 ms leaves room for
# a busy machine's scheduling, and samples taken late only raise it); never
# over SYN_WAIT_CEILING, where the kernel's resend comes first anyway.
SYN_WAIT_INITIAL = 0.2
SYN_WAIT_FLOOR = 0.01
SYN_WAIT_CEILING = 1.0
# A GET sent and not answered within the answer times measured (SRTT + 4
# RTTVAR, as for the SYN) is sent once more on a fresh connection, and the
# first answer wins (a hedged request): IMDS drops packets past its limits,
# and a request it never answers would cost the whole timeout. HEDGE_FLOOR is
# far above a healthy answer, so a service that is only slow is not sent its
# load twice (wire.HEDGES_AT_ONCE bounds the extra load against one that is silent).
HEDGE_INITIAL = 0.25
HEDGE_FLOOR = 0.1


class SynTimer:
    """The wait before a fresh SYN, from measured connect times, as TCP's RTO (RFC 6298).

    ``measured(seconds)`` takes the time of a connect that completed on its
    first SYN (Karn: one that needed a fresh SYN says nothing about the round
    trip); ``wait(resends)`` is SRTT + 4 RTTVAR within ``floor`` and
    ``ceiling``, doubled for each fresh SYN the connect already needed (TCP's
    back-off: a service dropping SYNs is not helped by more); ``current`` is
    ``wait(0)``, kept up to date by each measurement (every request reads it,
    twice). The same estimate over answer times gives the wait before a
    hedged request. Shared by a transport's engines without a lock: a lost
    update only skips one sample.
    """

    __slots__ = ("ceiling", "current", "floor", "initial", "rttvar", "srtt")

    def __init__(
        self,
        initial: float = SYN_WAIT_INITIAL,
        floor: float = SYN_WAIT_FLOOR,
        ceiling: float = SYN_WAIT_CEILING,
    ) -> None:
        self.initial, self.floor, self.ceiling = initial, floor, ceiling
        self.srtt: Optional[float] = None
        self.rttvar = 0.0
        self.current = self.wait()

    def measured(self, seconds: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = seconds, seconds / 2.0
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - seconds)
            self.srtt = 0.875 * self.srtt + 0.125 * seconds
        self.current = min(self.ceiling, max(self.floor, self.srtt + 4.0 * self.rttvar))

    def wait(self, resends: int = 0) -> float:
        base = self.initial if self.srtt is None else self.srtt + 4.0 * self.rttvar
        wait: float = max(self.floor, base) * (2 ** min(resends, 8))
        return min(self.ceiling, wait)
