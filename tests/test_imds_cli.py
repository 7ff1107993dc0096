"""``ec2-metadata-core imds get|json``: ec2-metadata 3.0's ``imds`` command, side by side.

Both run as real processes against the simulator: ec2-metadata 3.0.0's own
``imds`` (its ``ec2_metadata`` singleton's four base URLs pointed at the
simulator, as benchmarks/harness/peer_ec2_metadata.py does; nothing else of
it changed; ec2-metadata 3.0.0 is in requirements/dev.txt) and ours. What a
script reads (stdout and the exit status) must be the same; where 3.0 prints
a traceback, ours prints one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Iterator, List

import pytest

from ec2_metadata_core.simulator import Simulator

PEER = """
import sys
import ec2_metadata
from ec2_metadata.cli import main
base = sys.argv[1].rstrip("/") + "/latest/"
peer = ec2_metadata.ec2_metadata
peer.service_url = base
peer.metadata_url, peer.dynamic_url = base + "meta-data/", base + "dynamic/"
peer.userdata_url = base + "user-data/"
sys.exit(main(sys.argv[2:]))
"""
SCALARS = [
    "region",
    "instance-id",
    "instance_type",
    "availability-zone",
    "availability_zone_id",
    "ami_launch_index",
    "private_ipv4",
    "kernel_id",  # absent on the simulated instance
    "partition",
]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def theirs(sim: Simulator, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", PEER, sim.url, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def ours(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ec2_metadata_core", "--endpoint", url, "imds", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("name", SCALARS)
@pytest.mark.parametrize("flags", [[], ["-n"]])
def test_get_prints_what_ec2_metadata_3_prints(sim: Simulator, name: str, flags: List[str]) -> None:
    peer, mine = theirs(sim, "get", name, *flags), ours(sim.url, "get", name, *flags)
    assert peer.returncode == 0, peer.stderr
    assert (mine.returncode, mine.stdout, mine.stderr) == (0, peer.stdout, "")


def test_an_absent_value_is_an_empty_line_and_exit_0(sim: Simulator) -> None:
    # What `set -e` scripts written for 3.0 rely on (our own `get` exits 3 here).
    assert ours(sim.url, "get", "kernel-id").stdout == "\n"
    assert ours(sim.url, "get", "kernel-id").returncode == 0


def test_json_prints_what_ec2_metadata_3_prints(sim: Simulator) -> None:
    peer, mine = theirs(sim, "json", *SCALARS), ours(sim.url, "json", *SCALARS)
    assert peer.returncode == 0, peer.stderr
    assert (mine.returncode, mine.stdout) == (0, peer.stdout)
    assert list(json.loads(mine.stdout)) == SCALARS  # names as given, in order
    assert json.loads(mine.stdout)["kernel_id"] is None


def test_mappings_print_as_json_where_3_prints_a_python_repr(sim: Simulator) -> None:
    peer, mine = theirs(sim, "get", "iam_info"), ours(sim.url, "get", "iam_info")
    assert peer.returncode == mine.returncode == 0, peer.stderr + mine.stderr
    assert peer.stdout.startswith("{'")
    assert json.loads(mine.stdout) == json.loads(peer.stdout.replace("'", '"'))


def test_an_unknown_name_is_one_line_and_exit_2(sim: Simulator) -> None:
    mine = ours(sim.url, "get", "regoin")
    assert theirs(sim, "get", "regoin").returncode == 2
    assert (mine.returncode, mine.stdout) == (2, "")
    assert mine.stderr.splitlines() == [
        "ec2-metadata-core: error: unknown name 'regoin': did you mean region? "
        "('dump' shows every name)"
    ]


def test_a_failed_read_is_one_line_and_exit_1_not_a_traceback() -> None:
    mine = ours("http://127.0.0.1:9", "--attempts", "1", "get", "region")
    assert (mine.returncode, mine.stdout) == (1, "")
    assert len(mine.stderr.splitlines()) == 1 and "Traceback" not in mine.stderr
