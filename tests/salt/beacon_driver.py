"""Salt's own beacon loop over the ``ec2_metadata`` beacon, in another venv's Salt.

Run with a matrix venv's Python (tests/salt/test_salt_versions.py):
``python beacon_driver.py ENDPOINT CACHEDIR``. Each line ``run`` on stdin is
one pass of ``salt.beacons.Beacon.process``, as the minion makes once a
second; its events are printed as one JSON line. The first line printed
names the Salt version.
"""

from __future__ import annotations

import json
import sys

import salt.beacons
import salt.config
import salt.version


def main() -> int:
    endpoint, cachedir = sys.argv[1:3]
    opts = salt.config.minion_config(None)
    opts.update(
        id="web-1",
        cachedir=cachedir,
        ec2_metadata={"endpoint": endpoint},
        beacons={"ec2_metadata": []},  # no interval: every pass polls
    )
    beacons = salt.beacons.Beacon(opts, {})
    print(json.dumps({"salt": salt.version.__version__}), flush=True)
    for line in sys.stdin:
        if line.strip() == "run":
            print(json.dumps(beacons.process(opts["beacons"], {})), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
