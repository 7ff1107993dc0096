"""What the simulator counts: requests, connections, push-back, and the time they took.

The figures tests and ``make bench`` read (``Simulator.stats()``), apart from
the server that updates them.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


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
