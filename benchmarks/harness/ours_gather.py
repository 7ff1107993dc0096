"""Ours, the gather alone: import once, then N full gathers in this process.

Usage: python ours_gather.py BASE_URL N

Each gather is ``snapshot(EC2Metadata(endpoint=BASE_URL))`` with a new
``EC2Metadata``, so each pays what a fresh process pays after import: a new
token and new connections. The first gather of the process is reported apart
(``gathers_s[0]``): it also runs code paths for the first time. Prints one
JSON line.
"""

from __future__ import annotations

import json
import sys
import time

started = time.perf_counter()
from ec2_metadata_core import EC2Metadata  # noqa: E402  (timed)
from ec2_metadata_core.snapshot import snapshot  # noqa: E402

imported = time.perf_counter()


def main() -> int:
    url, count = sys.argv[1], int(sys.argv[2])
    times = []
    cpu = []
    data = {}
    for _ in range(count):
        metadata = EC2Metadata(endpoint=url)
        begin, begin_cpu = time.perf_counter(), time.process_time()
        data = snapshot(metadata)
        times.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
        metadata.client.close()  # outside the timed span: no idle sockets pile up
    result = {
        "import_s": imported - started,
        "gathers_s": times,
        "gathers_cpu_s": cpu,
        "keys": len(data),
        "interfaces": len(data.get("network_interfaces") or {}),
        "tags": len(data.get("tags") or {}),
        "region": data.get("region"),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
