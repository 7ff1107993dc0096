"""`python -m ec2_metadata_core` as a user runs it: a real process against the simulator."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

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


def test_version() -> None:
    from importlib.metadata import version

    proc = run("--version")
    assert (proc.returncode, proc.stdout) == (
        0,
        "ec2-metadata-core {}\n".format(version("ec2-metadata-core")),
    )


def test_connection_options_go_before_or_after_the_command(sim: Simulator) -> None:
    for args in (
        ("--endpoint", sim.url, "get", "region"),
        ("get", "region", "--endpoint", sim.url),
        ("--endpoint", "http://127.0.0.1:9", "get", "region", "--endpoint", sim.url),
    ):
        proc = run(*args)
        assert (proc.returncode, proc.stdout) == (0, "eu-central-1\n"), (args, proc.stderr)
    proc = run("--attempts", "1", "--endpoint", "http://127.0.0.1:9", "dump", "--format", "flat")
    assert "cannot reach IMDS at 127.0.0.1:9" in assert_one_line_error(proc, 1)


def test_an_ipv6_endpoint_is_named_with_brackets() -> None:
    with Simulator() as stopped:
        port = stopped.port
    line = assert_one_line_error(
        run("get", "region", "--attempts", "1", endpoint="http://[::1]:{}".format(port)), 1
    )
    assert "cannot reach IMDS at [::1]:{}: ".format(port) in line


@pytest.mark.parametrize(
    "args",
    [
        ("get", "region"),
        ("dump",),
        ("dump", "--format", "env"),
        ("get", "user-data"),
        ("--help",),
        ("get", "--help"),
        ("--version",),
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("stdout", ["> /dev/full", ">&-"])
def test_output_that_cannot_be_written_is_one_line_exit_1(
    sim: Simulator, args: tuple, stdout: str
) -> None:
    # As a shell runs it: `ec2-metadata-core get region > /dev/full`, `... >&-`.
    script = 'exec "$@" {}'.format(stdout)
    proc = subprocess.run(
        [
            "sh",
            "-c",
            script,
            "sh",
            sys.executable,
            "-m",
            "ec2_metadata_core",
            *args,
            "--endpoint",
            sim.url,
        ]
        if args[-1] != "--help" and args != ("--version",)
        else ["sh", "-c", script, "sh", sys.executable, "-m", "ec2_metadata_core", *args],
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    reason = "No space left on device" if stdout == "> /dev/full" else "standard output is closed"
    assert lines[0] == "ec2-metadata-core: error: cannot write the output: " + reason


class _CountingRaw(io.RawIOBase):
    """Standard output's bytes layer under ``python -u`` or PYTHONUNBUFFERED: every write
    is a system call."""

    def __init__(self) -> None:
        self.writes: List[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.writes.append(bytes(data))
        return len(data)


def test_a_dump_to_an_unbuffered_stdout_is_written_in_chunks_not_a_write_a_token(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ec2_metadata_core import cli

    raw = _CountingRaw()
    stdout = io.TextIOWrapper(raw, write_through=True)  # type: ignore[type-var]
    monkeypatch.setattr(sys, "stdout", stdout)
    assert cli.main(["dump", "--endpoint", sim.url]) == 0
    assert json.loads(b"".join(raw.writes)) == snapshot(EC2Metadata(endpoint=sim.url))
    assert len(raw.writes) == 1  # the document is some 11 KB: one chunk (it was a write a token)


def test_output_chunks_keep_the_order_and_pass_a_large_piece_on_without_a_copy() -> None:
    from ec2_metadata_core.output import _CHUNK, _chunked

    large = b"y" * (3 * _CHUNK)  # a YAML document is one piece: copying it doubles the peak
    pieces = [b"a"] * (_CHUNK + 10) + [b"", large, b"\n"]
    chunks = list(_chunked(pieces))
    assert b"".join(chunks) == b"".join(pieces)
    assert [len(chunk) for chunk in chunks] == [_CHUNK, 10, 3 * _CHUNK, 1]
    assert chunks[2] is large


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("events_maintenance_scheduled.0.Code", "system-reboot\n"),
        ("events-maintenance-scheduled.0.NotBefore", "14 Dec 2026 09:00:43 GMT\n"),
        ("instance_identity_document.marketplaceProductCodes.0", "3f8t6t8fp5m9xx18yzwriozxi\n"),
        ("tags_Name", "web-01\n"),
        ("tags_aws_autoscaling_groupName", "web-asg\n"),
        ("tags_env_tier", "backend\n"),
        ("events_maintenance_scheduled_0_Code", "system-reboot\n"),
    ],
)
def test_get_takes_list_indexes_and_flat_names(sim: Simulator, name: str, expected: str) -> None:
    proc = run("get", name, endpoint=sim.url)
    assert (proc.returncode, proc.stdout) == (0, expected), proc.stderr


def test_get_of_every_flat_name_gives_the_flat_value(sim: Simulator) -> None:
    flat = json.loads(run("dump", "--format", "flat", endpoint=sim.url).stdout)
    suffixed = [key for key in flat if key.startswith("tags_env_tier_")]
    assert suffixed
    subnets = [k for k in flat if k.startswith("network_interfaces_") and k.endswith("_subnet_id")]
    assert len(subnets) == 2
    for key in ["region", *subnets, *suffixed]:
        proc = run("get", key, endpoint=sim.url)
        assert proc.stdout == str(flat[key]) + "\n", (key, proc.stderr)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("region.foo", "region is a string, not an object or a list"),
        ("ami_launch_index.0", "ami_launch_index is a number or boolean"),
        ("security_groups.first", "security_groups is a list: 'first' is not an index"),
        ("tags.Name.x", "tags.Name is a string"),
        ("region_foo", "unknown name 'region_foo'"),
    ],
)
def test_a_path_through_a_scalar_is_a_usage_error(sim: Simulator, name: str, says: str) -> None:
    assert says in assert_one_line_error(run("get", name, endpoint=sim.url), 2)


def test_an_index_past_the_end_is_absent(sim: Simulator) -> None:
    line = assert_one_line_error(
        run("get", "events_maintenance_scheduled.9.Code", endpoint=sim.url), 3
    )
    assert "events_maintenance_scheduled.9.Code is absent" in line


def test_an_unknown_name_says_what_was_meant_in_one_short_line(sim: Simulator) -> None:
    line = assert_one_line_error(run("get", "regoin", endpoint=sim.url), 2)
    assert line.endswith(": unknown name 'regoin': did you mean region? ('dump' shows every name)")
    line = assert_one_line_error(run("dump", "--keys", "region,instance-idd", endpoint=sim.url), 2)
    assert "did you mean instance_id or" in line and len(line) < 200


def test_get_tags_with_tags_off_says_how_to_enable_them(sim: Simulator) -> None:
    sim.tags_enabled = False
    for name in ("tags", "tags.Name", "tags_Name"):
        line = assert_one_line_error(run("get", name, endpoint=sim.url), 3)
        assert line.startswith("ec2-metadata-core: {} is absent: ".format(name))
        assert "--instance-metadata-tags enabled" in line


def test_prefix_is_one_rule_for_flat_and_env(sim: Simulator) -> None:
    plain = json.loads(run("dump", "--format", "flat", endpoint=sim.url).stdout)
    flat = json.loads(run("dump", "--format", "flat", "--prefix", "ec2_", endpoint=sim.url).stdout)
    # The prefix goes in front of each name; the collision suffixes stay as they were.
    assert flat == {"ec2_" + key: value for key, value in plain.items()}
    env = run("dump", "--format", "env", "--prefix", "ec2_", endpoint=sim.url).stdout
    names = [
        line.split("=", 1)[0].replace("export ", "", 1)
        for line in env.splitlines()
        if line.startswith("export ")
    ]
    assert names == list(flat)
    assert run("dump", "--format", "env", endpoint=sim.url).stdout == env  # ec2_ is env's default


@pytest.mark.parametrize("prefix", ["my-", "9", "a b", "é"])
@pytest.mark.parametrize("form", ["flat", "env"])
def test_a_prefix_that_makes_no_identifiers_is_refused(
    sim: Simulator, prefix: str, form: str
) -> None:
    line = assert_one_line_error(
        run("dump", "--format", form, "--prefix", prefix, endpoint=sim.url), 2
    )
    assert "prefix {!r} would not make identifiers".format(prefix) in line
    assert sim.stats.requests == 0


@pytest.mark.parametrize("form", ["json", "yaml"])
def test_prefix_with_json_or_yaml_is_refused_not_ignored(sim: Simulator, form: str) -> None:
    line = assert_one_line_error(
        run("dump", "--format", form, "--prefix", "x_", endpoint=sim.url), 2
    )
    assert "--prefix applies to --format flat and env only" in line


def test_every_connection_option_is_taken_on_either_side_of_the_command() -> None:
    from ec2_metadata_core.cli import _parser

    before = _parser().parse_args(
        ["--ipv6", "--timeout", "0.5", "--attempts", "2", "--allow-imdsv1", "get", "region"]
    )
    after = _parser().parse_args(
        ["get", "region", "--ipv6", "--timeout", "0.5", "--attempts", "2", "--allow-imdsv1"]
    )
    for args in (before, after):
        got = (args.endpoint_mode, args.timeout, args.attempts, args.allow_imdsv1, args.endpoint)
        assert got == ("IPv6", 0.5, 2, True, None)
    neither = _parser().parse_args(["dump"])
    assert (neither.endpoint_mode, neither.timeout, neither.allow_imdsv1) == (None, None, None)


# -- issue 18: a value every instance has, names a user tries ---------------------------


def test_a_404_for_a_value_every_instance_has_fails_dump_and_get(sim: Simulator) -> None:
    # dump said "instance_id": null (exit 0) and get said absent (exit 3).
    sim.delete("meta-data/instance-id")
    for words in (["dump"], ["get", "instance-id"], ["dump", "--keys", "instance_id"]):
        line = assert_one_line_error(run(*words, endpoint=sim.url), 1)
        assert line == (
            "ec2-metadata-core: error: IMDS answered 404 (not found) for "
            "/latest/meta-data/instance-id"
        ), words


def test_an_empty_meta_data_fails_the_dump(tmp_path: Path) -> None:
    data = tmp_path / "instance.json"
    data.write_text(json.dumps({"meta-data": {}}))
    with Simulator(instance=str(data)) as empty:
        line = assert_one_line_error(run("dump", endpoint=empty.url), 1)
    assert "IMDS answered 404 (not found) for /latest/" in line, line


def test_get_reads_every_public_attribute_and_categories_the_service_added(
    sim: Simulator,
) -> None:
    proc = run("get", "block_device_mapping_names", endpoint=sim.url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == sorted(EC2Metadata(endpoint=sim.url).block_device_mapping)
    sim.set("meta-data/nonsense-category", "hello")
    proc = run("get", "nonsense-category", endpoint=sim.url)
    assert (proc.returncode, proc.stdout) == (0, "hello\n"), proc.stderr


@pytest.mark.parametrize(
    ("words", "code", "says"),
    [
        (["dump", "--keys", "iam_security_credentials"], 2, "needs --include-secrets"),
        (["dump", "--keys", "user_data"], 2, "needs --include-user-data"),
        (["get", "local-ipv4"], 2, "IMDS's local-ipv4 is private_ipv4"),
        (["get", "tags.Nmae"], 3, "tags.Nmae is absent on this instance: did you mean tags.Name"),
    ],
)
def test_a_near_miss_says_what_was_meant(
    sim: Simulator, words: List[str], code: int, says: str
) -> None:
    assert says in assert_one_line_error(run(*words, endpoint=sim.url), code)
