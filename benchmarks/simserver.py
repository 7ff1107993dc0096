"""The IMDS simulator in a process of its own, steered over stdin, for the benchmarks.

A simulator inside the measuring process would share its GIL with the client
and distort every figure, so the benchmarks run this script as a child. It is
``python -m ec2_metadata_core simulate`` (same ``Simulator``, same default
instance) plus what a benchmark needs between runs and the CLI does not offer:
the request counters (``Simulator.stats``) and live knobs.

Protocol: the first stdout line is the base URL. Then one command a line on
stdin, each answered by one JSON line on stdout:

    stats          {"requests": N, "token_requests": N, "connections": N,
                    "over_capacity": N, "throttled": N, "peak_connections": N,
                    "by_path": {"GET /latest/...": N}, "by_status": {...},
                    "server_time": s, "server_cpu_time": s,
                    "process_cpu_time": s}  (CPU of this whole process, all
                                              threads, since the last reset)
    reset          {"ok": true}   (zero the counters)
    latency MS     {"ok": true}   (milliseconds added to every answer)
    silent 0|1     {"ok": true}   (accept, read, never answer)
    quit           stops; so does end of input

Usage: python benchmarks/simserver.py [--latency MS] [--scenario NAME] [--keep-alive]

By default it behaves like the real service on the wire (one request per
connection); ``--scenario`` makes it push back as a named scenario of
``ec2_metadata_core.simulator.SCENARIOS`` does, ``--keep-alive`` keeps
connections open for more requests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional

from ec2_metadata_core.simulator import SCENARIOS, Simulator, scenario

_since = [time.process_time()]


def _stats(sim: Simulator) -> Dict[str, Any]:
    stats = sim.stats
    return {
        "requests": stats.requests,
        "token_requests": stats.token_requests,
        "connections": stats.connections,
        "over_capacity": stats.over_capacity,
        "throttled": stats.throttled,
        "peak_connections": stats.peak_connections,
        "by_path": dict(stats.by_path),
        "by_status": {str(k): v for k, v in stats.by_status.items()},
        "server_time": stats.server_time,
        "server_cpu_time": stats.server_cpu_time,
        "process_cpu_time": time.process_time() - _since[0],
    }


def _command(sim: Simulator, words: List[str]) -> Optional[Dict[str, Any]]:
    """The answer to one command; None means stop."""
    verb = words[0] if words else ""
    if verb == "stats":
        return _stats(sim)
    if verb == "reset":
        sim.reset_stats()
        _since[0] = time.process_time()
    elif verb == "latency" and len(words) == 2:
        sim.latency = float(words[1]) / 1000.0
    elif verb == "silent" and len(words) == 2:
        sim.silent = words[1] == "1"
    elif verb in ("quit", ""):
        return None
    else:
        return {"ok": False, "error": "unknown command: {}".format(" ".join(words))}
    return {"ok": True}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0, metavar="MS")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--keep-alive", action="store_true")
    args = parser.parse_args(argv)
    knobs = scenario(args.scenario) if args.scenario else {}
    sim = Simulator(
        host="127.0.0.1",
        port=0,
        latency=args.latency / 1000.0,
        keep_alive=args.keep_alive,
        seed=1,
        # The data file's own signature values: a key of this process's would
        # sign differently in each simulator, and every pushback row compares
        # its dumps with a healthy run's from another simulator process.
        signer=False,
        **knobs,
    ).start()
    try:
        print(sim.url, flush=True)
        for line in sys.stdin:
            answer = _command(sim, line.split())
            if answer is None:
                break
            print(json.dumps(answer), flush=True)
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
