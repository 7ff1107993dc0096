"""Named ways the real service pushes back, as ``Simulator`` keyword arguments.

One table for the tests (tests/test_faults.py), the benchmark (`make bench`)
and users (``simulate --scenario NAME``): a client must read the whole
instance under each of them, exactly as from a healthy service. See
``docs/imds.md``, "On the wire".
"""

from __future__ import annotations

from typing import Any, Dict

SCENARIOS: Dict[str, Dict[str, Any]] = {
    # The kernel drops SYNs beyond a listen queue of 5; they are resent after 1 s.
    "listen-queue-5": {"listen_queue": 5},
    # A cap on simultaneous connections; a connection beyond it is reset.
    "4-connections": {"max_connections": 4},
    "8-connections": {"max_connections": 8},
    # Query throttling: 503 past 100 requests a second, or a token bucket
    # of 200 a second with a depth of 20.
    "100-per-second": {"rate_limit": 100, "throttle": "503"},
    "bucket-200-depth-20": {"rate_limit": 200, "rate_burst": 20, "throttle": "503"},
    # Errors that come whatever the load.
    "503-every-5th-get": {"faults": [{"method": "GET", "status": 503, "every": 5}]},
    "500-every-6th-get": {"faults": [{"method": "GET", "status": 500, "every": 6}]},
    "429-10-of-30-gets": {"faults": [{"method": "GET", "status": 429, "every": 30, "k": 10}]},
    # Half of all GETs, twenty in a row: a lone request must outlast the run.
    "429-20-of-40-gets": {"faults": [{"method": "GET", "status": 429, "every": 40, "k": 20}]},
    # Dropped packets: a request (one connection each) never answered.
    "2pct-never-answered": {"faults": [{"action": "silent", "chance": 0.02}]},
    "http10": {"http10": True},
}


def scenario(name: str) -> Dict[str, Any]:
    """``Simulator`` keyword arguments for scenario ``name`` (KeyError if unknown)."""
    from .faults import Fault

    knobs = dict(SCENARIOS[name])
    if "faults" in knobs:
        knobs["faults"] = [Fault(**fields) for fields in knobs["faults"]]
    return knobs
