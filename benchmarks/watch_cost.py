"""What watching for notices costs: requests per poll, round trips deep, CPU per hour.

A watcher runs for hours on every instance of a fleet, so its cost is per
poll times polls per hour (720 at the default 5 s). Measured on the watcher
of ``ec2_metadata_core.events`` in a child process (harness/ours_watch.py)
against the benchmark simulator (its own process, so its CPU is not counted):

* requests per poll, from the simulator's counters, after the first poll
  (identity and the tags' baseline are read once per watch), with tag values
  read again every TAG_VALUES_EVERY polls, as by default;
* round trips deep: how much a poll's wall time grows when the simulator
  takes 10 ms per request, divided by those 10 ms (1 = every path in one
  pipelined round), as the gather's round trips are counted: the wall time at
  0 ms (connects, the simulator's work) is not a round trip;
* CPU per poll at 0 ms, and so CPU per hour at the default interval.

Targets (issue 12): at most the changing paths (5, plus the tags listing and,
when due, one read per tag value) and one round trip deep; under 1 s of CPU
per hour.

``run.py`` calls ``measure`` and ``render``; ``python benchmarks/watch_cost.py``
runs this section alone (inside ``make bench``'s loopback-only namespace:
``unshare -rn``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any, Dict, List, Optional

import layout
import measure

from ec2_metadata_core.events import DEFAULT_INTERVAL, TAG_VALUES_EVERY

POLLS = 360  # a multiple of TAGS_EVERY
TAGS_EVERY = TAG_VALUES_EVERY
DEPTH_POLLS = 30
DEPTH_LATENCY_MS = 10.0
CPU_PER_HOUR_LIMIT_S = 1.0
MAX_DEPTH = 1
# The changing paths: spot, rebalance, scheduled, history, lifecycle, tags listing.
CHANGING_PATHS = 6


def _polls(sim: measure.Sim, url: str, count: int) -> Dict[str, Any]:
    """``count`` polls in a child; its figures and the simulator's counters for them."""
    argv = [str(layout.PYTHON), str(layout.HARNESS / "ours_watch.py"), url, str(count)]
    argv.append(str(TAGS_EVERY))
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=measure.child_env(),
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("watch harness failed: " + (proc.communicate()[1] or "")[-300:])
        sim.reset()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        result: Dict[str, Any] = json.loads(proc.stdout.readline())
        result["stats"] = sim.stats()
    finally:
        proc.kill() if proc.poll() is None else None
        proc.communicate()
    return result


def measure_watch(sim: measure.Sim, url: str) -> Dict[str, Any]:
    """The section's figures and targets (see the module docstring)."""
    try:
        sim.latency(0)
        cost = _polls(sim, url, POLLS)
        sim.latency(DEPTH_LATENCY_MS)
        deep = _polls(sim, url, DEPTH_POLLS)
        sim.latency(0)
    except (RuntimeError, OSError, ValueError) as exc:
        return {"error": str(exc)}
    stats = cost["stats"]
    tag_values = sum(
        1
        for path in stats["by_path"]
        if path.startswith("GET /latest/meta-data/tags/instance/") and not path.endswith("/")
    )
    per_poll = stats["requests"] / POLLS
    cpu_per_poll = statistics.median(cost["polls_cpu_s"])
    # The mean, not the median: the polls that re-read tag values count too.
    cpu_per_hour = statistics.mean(cost["polls_cpu_s"]) * 3600.0 / DEFAULT_INTERVAL
    added = statistics.median(deep["polls_wall_s"]) - statistics.median(cost["polls_wall_s"])
    depth = added / (DEPTH_LATENCY_MS / 1000.0)
    block: Dict[str, Any] = {
        "polls": POLLS,
        "requests_per_poll": per_poll,
        "token_requests": stats["token_requests"],
        "tag_values": tag_values,
        "events": cost["events"] + deep["events"],
        "poll_wall_ms_0": 1000.0 * statistics.median(cost["polls_wall_s"]),
        "cpu_per_poll_ms": 1000.0 * cpu_per_poll,
        "cpu_per_poll_mean_ms": 1000.0 * statistics.mean(cost["polls_cpu_s"]),
        "cpu_per_hour_s": cpu_per_hour,
        "interval_s": DEFAULT_INTERVAL,
        "poll_wall_ms_at_latency": 1000.0 * statistics.median(deep["polls_wall_s"]),
        "latency_ms": DEPTH_LATENCY_MS,
        "round_trips_deep": depth,
    }
    block["targets"] = [
        _target(
            "watch: requests per poll",
            per_poll,
            CHANGING_PATHS + tag_values / TAGS_EVERY,
            "{:.2f} (<= {} changing paths + {} tag values every {} polls)".format(
                per_poll, CHANGING_PATHS, tag_values, TAGS_EVERY
            ),
        ),
        _target(
            "watch: round trips per poll",
            round(depth),
            MAX_DEPTH,
            "{:.2f} x {:g} ms".format(depth, DEPTH_LATENCY_MS),
        ),
        _target(
            "watch: CPU per hour at {:g} s".format(DEFAULT_INTERVAL),
            cpu_per_hour,
            CPU_PER_HOUR_LIMIT_S,
            "{:.2f} s (limit {:g} s)".format(cpu_per_hour, CPU_PER_HOUR_LIMIT_S),
        ),
    ]
    return block


def _target(name: str, value: float, limit: float, shown: str) -> Dict[str, Any]:
    return {"name": name, "value": value, "limit": limit, "ok": value <= limit, "shown": shown}


def render(block: Optional[Dict[str, Any]]) -> str:
    if not block:
        return ""
    if "error" in block:
        return "events watcher: ERROR {}".format(block["error"])
    lines = [
        "events watcher ({} polls; simulator CPU not counted)".format(block["polls"]),
        "  requests per poll {:.2f} ({} tag values), tokens {}".format(
            block["requests_per_poll"], block["tag_values"], block["token_requests"]
        ),
        "  poll wall {:.2f} ms at 0 ms, {:.1f} ms at {:g} ms latency".format(
            block["poll_wall_ms_0"], block["poll_wall_ms_at_latency"], block["latency_ms"]
        ),
        "  CPU per poll {:.3f} ms (median; mean {:.3f}) -> {:.2f} s an hour at {:g} s".format(
            block["cpu_per_poll_ms"],
            block["cpu_per_poll_mean_ms"],
            block["cpu_per_hour_s"],
            block["interval_s"],
        ),
    ]
    for target in block["targets"]:
        verdict = "PASS" if target["ok"] else "FAIL"
        lines.append("  {} {}: {}".format(verdict, target["name"], target["shown"]))
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    if not measure.loopback_only():
        print("watch_cost: run inside a loopback-only namespace (see make bench)", file=sys.stderr)
        return 2
    sim = measure.Sim()
    try:
        block = measure_watch(sim, sim.url)
    finally:
        sim.close()
    print(render(block))
    if "--json" in (argv if argv is not None else sys.argv[1:]):
        print(json.dumps(block, indent=1, sort_keys=True))
    return 0 if "error" not in block and all(t["ok"] for t in block["targets"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
