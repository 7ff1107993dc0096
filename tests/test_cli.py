"""`python -m ec2_metadata_core` as a user runs it: a real process against the simulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, Optional

import pytest
import yaml

from ec2_metadata_core import EC2Metadata
from ec2_metadata_core.flat import IDENTIFIER, flatten
from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.snapshot import snapshot

SECRETS = ("ASIASIMULATORKEY0001", "simulator-secret", "simulator-session-token")


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def run(
    *args: str, endpoint: Optional[str] = None, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    if endpoint is not None:
        environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = endpoint
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ec2_metadata_core", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_dump_prints_the_snapshot_as_sorted_json(sim: Simulator) -> None:
    proc = run("dump", endpoint=sim.url)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data == snapshot(EC2Metadata(endpoint=sim.url))
    assert data["region"] == "eu-central-1"
    assert list(data) == sorted(data)
    assert not [s for s in SECRETS if s in proc.stdout]


def test_dump_yaml_is_the_same_document(sim: Simulator) -> None:
    as_json = json.loads(run("dump", endpoint=sim.url).stdout)
    proc = run("dump", "--format", "yaml", endpoint=sim.url)
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout) == as_json


def test_dump_flat_loses_nothing(sim: Simulator) -> None:
    proc = run("dump", "--format", "flat", endpoint=sim.url)
    assert proc.returncode == 0, proc.stderr
    flat = json.loads(proc.stdout)
    assert all(IDENTIFIER.match(key) for key in flat)
    assert flat == flatten(snapshot(EC2Metadata(endpoint=sim.url)))
    # Both colliding tags survive with their own values.
    assert flat["tags_env_tier"] == "backend"
    assert "frontend" in [v for k, v in flat.items() if k.startswith("tags_env_tier_")]
    assert flat["tags_aws_autoscaling_groupName"] == "web-asg"


def test_dump_env_evaluates_in_a_shell(sim: Simulator) -> None:
    proc = run("dump", "--format", "env", endpoint=sim.url)
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout + '\nprintf "%s|%s" "$ec2_availability_zone" "$ec2_tags_Role"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == "eu-central-1b|web"


def test_dump_keys_and_secrets_on_request(sim: Simulator) -> None:
    proc = run("dump", "--keys", "region,instance-id", endpoint=sim.url)
    assert json.loads(proc.stdout) == {
        "instance_id": "i-0123456789abcdef0",
        "region": "eu-central-1",
    }
    full = run("dump", "--include-secrets", "--include-user-data", endpoint=sim.url)
    data = json.loads(full.stdout)
    assert data["iam_security_credentials"]["AccessKeyId"] == "ASIASIMULATORKEY0001"
    assert "simulator-user-data-secret" in data["user_data"]["content"]


def test_dump_unknown_key_is_a_usage_error(sim: Simulator) -> None:
    line = assert_one_line_error(run("dump", "--keys", "regoin", endpoint=sim.url), 2)
    assert "regoin" in line


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("region", "eu-central-1\n"),
        ("availability-zone", "eu-central-1b\n"),
        ("instance_type", "m5.large\n"),
        ("tags.Role", "web\n"),
        ("tags.aws:autoscaling:groupName", "web-asg\n"),
        ("tags.cost.center", "cc-4711\n"),
        ("ami_launch_index", "0\n"),
    ],
)
def test_get_prints_one_value(sim: Simulator, name: str, expected: str) -> None:
    proc = run("get", name, endpoint=sim.url)
    assert (proc.returncode, proc.stdout) == (0, expected), proc.stderr


def test_get_lists_one_item_a_line_and_mappings_as_json(sim: Simulator) -> None:
    groups = run("get", "security-groups", endpoint=sim.url)
    assert groups.stdout.splitlines() == EC2Metadata(endpoint=sim.url).security_groups
    tags = run("get", "tags", endpoint=sim.url)
    assert json.loads(tags.stdout)["Name"] == "web-01"
    mac = EC2Metadata(endpoint=sim.url).mac
    subnet = run("get", "network_interfaces.{}.subnet_id".format(mac), endpoint=sim.url)
    assert subnet.stdout.strip().startswith("subnet-")


def test_get_absent_exits_3_without_output(sim: Simulator) -> None:
    line = assert_one_line_error(run("get", "kernel-id", endpoint=sim.url), 3)
    assert "kernel-id is absent" in line
    assert_one_line_error(run("get", "tags.NoSuchTag", endpoint=sim.url), 3)


def test_get_user_data_prints_raw_bytes(sim: Simulator) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ec2_metadata_core", "get", "user-data", "-n"],
        capture_output=True,
        env={**os.environ, "AWS_EC2_METADATA_SERVICE_ENDPOINT": sim.url},
        check=True,
    )
    assert proc.stdout == EC2Metadata(endpoint=sim.url).user_data


def test_get_unknown_name_is_a_usage_error(sim: Simulator) -> None:
    line = assert_one_line_error(run("get", "regoin", endpoint=sim.url), 2)
    assert "unknown name 'regoin'" in line


def test_refused_endpoint_fails_in_one_line() -> None:
    with Simulator() as stopped:
        url = stopped.url
    line = assert_one_line_error(run("dump", "--attempts", "1", endpoint=url), 1)
    assert "cannot reach IMDS" in line


def test_silent_endpoint_names_the_hop_limit() -> None:
    with Simulator(silent=True) as silent:
        proc = run("get", "region", "--timeout", "0.2", "--attempts", "1", endpoint=silent.url)
    line = assert_one_line_error(proc, 1)
    assert "hop-limit" in line


def test_bad_settings_are_usage_errors(sim: Simulator) -> None:
    proc = run("dump", endpoint=sim.url, env={"AWS_METADATA_SERVICE_TIMEOUT": "soon"})
    assert "AWS_METADATA_SERVICE_TIMEOUT" in assert_one_line_error(proc, 2)
    assert "--endpoint" not in assert_one_line_error(run("dump", "--endpoint", "not a url"), 2)


def test_disabled_metadata_is_a_clear_failure(sim: Simulator) -> None:
    proc = run("dump", endpoint=sim.url, env={"AWS_EC2_METADATA_DISABLED": "true"})
    assert "disabled" in assert_one_line_error(proc, 1)
    assert sim.stats.requests == 0


def test_help_documents_commands_and_exit_codes() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for word in ("dump", "get", "simulate", "exit status", "AWS_EC2_METADATA_SERVICE_ENDPOINT"):
        assert word in proc.stdout
    dump_help = run("dump", "--help").stdout
    for word in ("--format", "--include-secrets", "--include-user-data", "--keys"):
        assert word in dump_help


def test_console_script_is_installed(sim: Simulator) -> None:
    script = Path(sys.executable).parent / "ec2-metadata-core"
    assert script.exists() or shutil.which("ec2-metadata-core")
    proc = subprocess.run(
        [str(script), "get", "instance-id"],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_EC2_METADATA_SERVICE_ENDPOINT": sim.url},
    )
    assert proc.stdout == "i-0123456789abcdef0\n", proc.stderr


def test_output_is_utf8_whatever_the_locale(sim: Simulator) -> None:
    sim.set("meta-data/tags/instance/Owner", "Jörg €")
    env = {"PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    got = run("get", "tags.Owner", endpoint=sim.url, env=env)
    assert (got.returncode, got.stderr) == (0, "")
    dump = run("dump", "--keys", "tags", endpoint=sim.url, env=env)
    assert json.loads(dump.stdout)["tags"]["Owner"] == "Jörg €"
    assert got.stdout == "Jörg €\n"
