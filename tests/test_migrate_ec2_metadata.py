"""docs/migrate-ec2-metadata.md, run: its Python, its commands, its table beside the real 3.0.

Every block runs as printed in a fresh interpreter or shell, with the AWS
SDK's endpoint variable pointing at the simulator (nothing in the blocks
names it, as on EC2). The table's first column runs with ec2-metadata 3.0.0's
own ``imds`` (as in tests/test_imds_cli.py), the others with ours.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from readme_support import Block, readme_blocks

from ec2_metadata_core.simulator import Fault, Simulator

PAGE = Path(__file__).resolve().parent.parent / "docs" / "migrate-ec2-metadata.md"
BIN = Path(sys.executable).parent


def blocks(language: str) -> List[str]:
    return [b.text for b in readme_blocks(PAGE) if b.language == language]


def all_blocks() -> List[Block]:
    return readme_blocks(PAGE)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def environ(sim: Simulator) -> Dict[str, str]:
    return dict(
        os.environ,
        AWS_EC2_METADATA_SERVICE_ENDPOINT=sim.url,
        PATH="{}:{}".format(BIN, os.environ.get("PATH", "")),
    )


def python(sim: Simulator, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environ(sim),
        timeout=60,
        check=False,
    )


def shell(sim: Simulator, line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        shlex.split(line, comments=True),
        capture_output=True,
        text=True,
        env=environ(sim),
        timeout=60,
        check=False,
    )


def test_every_block_is_run() -> None:
    assert [b.language for b in all_blocks()] == ["python"] * 4 + ["sh", "json"]


@pytest.mark.parametrize(
    ("index", "printed"),
    [(0, "eu-central-1\ni-0123456789abcdef0\n"), (1, "eu-central-1\n"), (2, "m5.large\n")],
)
def test_the_python_examples_print_what_they_say(sim: Simulator, index: int, printed: str) -> None:
    result = python(sim, blocks("python")[index])
    assert (result.returncode, result.stdout, result.stderr) == (0, printed, "")


def test_the_except_clause_written_for_3_catches_our_failure(sim: Simulator) -> None:
    code = blocks("python")[3]
    assert python(sim, code).stdout == "i-0123456789abcdef0\n"
    sim.faults.append(Fault(path="/latest/meta-data/instance-id", status=500))
    result = python(sim, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("IMDS failed: ")
    assert "500" in result.stdout


def test_the_commands_print_what_the_page_shows(sim: Simulator) -> None:
    lines = blocks("sh")[0].splitlines()
    results = [shell(sim, line) for line in lines]
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert [r.stdout for r in results[:2]] == ["eu-central-1\n", "\n"]
    assert results[2].stdout == blocks("json")[0]


def test_each_table_row_prints_what_ec2_metadata_3_prints(sim: Simulator) -> None:
    from test_imds_cli import PEER

    rows = [
        [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        for line in PAGE.read_text().splitlines()
        if line.startswith("| `imds ")
    ]
    assert len(rows) == 3
    for theirs, ours, native in rows:
        peer = subprocess.run(
            [sys.executable, "-c", PEER, sim.url, *shlex.split(theirs)[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        same, own = shell(sim, ours), shell(sim, native)
        assert (peer.returncode, same.returncode, own.returncode) == (0, 0, 0), theirs
        assert same.stdout == peer.stdout, theirs
        if "json" in theirs:
            renamed = {k.replace("-", "_"): v for k, v in json.loads(same.stdout).items()}
            assert json.loads(own.stdout) == renamed
        else:
            assert own.stdout == same.stdout, native
