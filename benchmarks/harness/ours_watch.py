"""Ours, the events watcher: N polls of one ``Watcher``, timed in this process.

Usage: python ours_watch.py BASE_URL N TAGS_EVERY

Tag values are read again every TAGS_EVERY polls, the ratio a watch at the
default intervals has (tags_interval / interval), since polls run back to
back here and a clock-based tags_interval would never come due.

Makes the first poll (identity, tag values of the baseline: a cost paid once
per watch), prints ``ready``, waits for a line on stdin (the parent zeroes the
simulator's counters), then polls N times back to back and prints one JSON
line: wall and CPU time of each poll. Between polls a watch sleeps in
``Event.wait``, which costs no CPU, so CPU per hour is CPU per poll times
polls per hour.
"""

from __future__ import annotations

import json
import sys
import time

from ec2_metadata_core import EC2Metadata
from ec2_metadata_core.events import Watcher


def main() -> int:
    url, count, tags_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    watcher = Watcher(EC2Metadata(endpoint=url), tags_interval=86400)
    watcher.poll()
    print("ready", flush=True)
    sys.stdin.readline()
    wall, cpu, events = [], [], 0
    for index in range(count):
        if index % tags_every == 0:
            watcher._recheck_due = 0.0  # due now (see the docstring)
        begin, begin_cpu = time.perf_counter(), time.process_time()
        events += len(watcher.poll())
        wall.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
    print(json.dumps({"polls_wall_s": wall, "polls_cpu_s": cpu, "events": events}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
