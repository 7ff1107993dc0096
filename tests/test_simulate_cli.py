"""`ec2-metadata-core simulate` and its `ctl`, `set`, `delete`, as a user types them (issue 18)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from ec2_metadata_core import EC2Metadata, IMDSHTTPError
from ec2_metadata_core.simulator import Fault, Simulator

CLI = [sys.executable, "-m", "ec2_metadata_core"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def start(*args: str) -> Tuple[subprocess.Popen[str], str]:
    """A serving `simulate` process and its URL (its first line of output)."""
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("http://"), proc.communicate(timeout=10)
    return proc, url


def stop(proc: subprocess.Popen[str]) -> Tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


@pytest.fixture
def served() -> Iterator[str]:
    # Connection options before `simulate` and serving options after it: a
    # KeyError: 'simulate' and "unrecognized arguments: --port 0" before.
    proc, url = start("--timeout", "0.2", "--attempts", "2", "simulate", "--port", "0")
    try:
        yield url
    finally:
        status, err = stop(proc)
        assert status == 0 and err == "", err


@pytest.mark.parametrize(
    "where",
    [
        ["--endpoint", "{url}", "simulate", "ctl", "rebalance"],
        ["simulate", "--endpoint", "{url}", "ctl", "rebalance"],
        ["simulate", "ctl", "--endpoint", "{url}", "rebalance"],
        ["simulate", "ctl", "rebalance", "--endpoint", "{url}"],
        ["--timeout", "3", "simulate", "ctl", "rebalance", "--endpoint", "{url}"],
    ],
)
def test_connection_options_go_before_or_after_any_simulate_command(
    served: str, where: List[str]
) -> None:
    proc = run(*[word.format(url=served) for word in where])
    assert proc.returncode == 0, proc.stderr
    assert "noticeTime" in json.loads(proc.stdout)
    assert EC2Metadata(endpoint=served).events_recommendations_rebalance is not None


def test_set_and_delete_shorthands_take_the_endpoint_anywhere(served: str) -> None:
    # The README's `simulate delete --endpoint URL PATH` was refused.
    proc = run("simulate", "delete", "--endpoint", served, "meta-data/public-ipv4")
    assert proc.returncode == 0, proc.stderr
    proc = run("simulate", "set", "meta-data/tags/instance/Name", "web-9", "--endpoint", served)
    assert proc.returncode == 0, proc.stderr
    proc = run("--endpoint", served, "simulate", "ctl", "set", "meta-data/ami-id", "ami-1")
    assert proc.returncode == 0, proc.stderr
    metadata = EC2Metadata(endpoint=served)
    assert metadata.public_ipv4 is None
    assert metadata.tags["Name"] == "web-9"
    assert metadata.ami_id == "ami-1"


def test_help_names_the_subcommands_as_they_are_typed() -> None:
    usage = run("simulate", "--help").stdout
    assert "{ctl,set,delete}" in usage
    assert run("simulate", "set", "--help").stdout.startswith(
        "usage: ec2-metadata-core simulate set "
    )
    maintenance = run("simulate", "ctl", "maintenance", "--help").stdout
    assert "--duration S seconds the window stays open" in " ".join(maintenance.split())


def test_the_standalone_simulator_takes_the_same_commands() -> None:
    with Simulator() as sim:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ec2_metadata_core.simulator",
                "delete",
                "meta-data/mac",
                "--endpoint",
                sim.url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert sim.read("meta-data/mac") is None


def test_a_bad_option_after_a_subcommand_is_one_line() -> None:
    proc = run("simulate", "ctl", "rebalance", "--nope")
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert "unrecognized arguments: --nope" in line


def _frames_of_ours(err: str) -> List[str]:
    """Traceback lines in our files. ``line 0`` is the import system still loading a
    module of ours, before any statement of it ran: the interpreter's start-up."""
    package = str(Path(__file__).resolve().parent.parent / "ec2_metadata_core")
    ours = [line for line in err.splitlines() if package in line or "ec2_metadata_core/" in line]
    return [line for line in ours if not line.endswith(", line 0, in <module>")]


@pytest.mark.parametrize("entry", ["module", "script"])
def test_ctrl_c_at_any_moment_is_exit_130_or_a_clean_stop(entry: str) -> None:
    """SIGINT from start-up to serving: never a traceback out of our code.

    Before ``__main__`` runs there is only the interpreter's own start-up
    (site, finding the package), whose KeyboardInterrupt no program can
    catch; from its first line SIGINT ends the process as interrupted (-2
    here, 130 in a shell) until the CLI turns it into exit status 130; once
    serving, it is a clean stop (0).
    """
    script = Path(sys.executable).parent / "ec2-metadata-core"
    if entry == "script" and not script.exists():
        pytest.skip("console script not installed")
    command = [str(script)] if entry == "script" else CLI
    outcomes = set()
    for delay in (0.03, 0.06, 0.09, 0.12, 0.16, 0.2, 0.25, 0.3, 0.4, 0.6, 0.9, 1.5):
        proc = subprocess.Popen(
            [*command, "simulate", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert not _frames_of_ours(err), (delay, err)
        if "Traceback" in err or "init_import_site" in err:
            continue  # the interpreter's start-up, finding the package: no line of ours ran
        assert proc.returncode in (0, 130, -signal.SIGINT), (delay, proc.returncode, err)
        outcomes.add(proc.returncode)
    assert 0 in outcomes  # the last ones came once it was serving


def test_binding_off_loopback_is_warned_about() -> None:
    proc, _ = start("simulate", "--host", "0.0.0.0", "--port", "0")
    status, err = stop(proc)
    assert status == 0
    (line,) = err.splitlines()
    assert line.startswith(
        "ec2-metadata-core simulate: warning: listening on 0.0.0.0, not loopback"
    )
    _, quiet = stop(start("simulate", "--port", "0")[0])
    assert quiet == ""


def test_a_fault_path_without_latest_is_under_latest() -> None:
    # `--fault path=meta-data/instance-type,...` never fired.
    with Simulator(faults=[Fault(path="meta-data/instance-type", status=500)]) as sim:
        metadata = EC2Metadata(endpoint=sim.url, attempts=1)
        with pytest.raises(IMDSHTTPError, match=r"500 for /latest/meta-data/instance-type"):
            _ = metadata.instance_type
    proc, url = start("simulate", "--port", "0", "--fault", "path=meta-data/ami-id,status=503")
    try:
        got = run("--endpoint", url, "--attempts", "1", "get", "ami-id")
        assert got.returncode == 1 and "503" in got.stderr, got.stderr
    finally:
        stop(proc)


def test_ctl_reads_the_endpoint_variable_when_no_option_names_one() -> None:
    with Simulator() as sim:
        proc = subprocess.run(
            [*CLI, "simulate", "ctl", "expire-tokens"],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, AWS_EC2_METADATA_SERVICE_ENDPOINT=sim.url),
        )
        assert proc.returncode == 0, proc.stderr
