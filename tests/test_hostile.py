"""A hostile or broken endpoint against the library and ``dump``: every read is bounded.

Each test is one of issue 17's findings, tried as an attacker would, on
loopback: the proxy of ``hostile_support`` in front of the simulator serves
what IMDS never would (trees with no end, bombs, trickles, escape sequences,
names that climb out of their directory). Each fails on the code before the
bounds (``ec2_metadata_core.bounds``) by running out of memory, time or
recursion, or by a value quietly wrong; after, each is one line, a non-zero
exit from the CLI, and the known values unharmed where they can be.
"""

from __future__ import annotations

import base64
import gzip
import json
import stat
import subprocess
import sys
import time
import urllib.parse
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from fault_support import cli_error, run_cli
from hostile_support import Answer, Hostile, Upstream, deep_category, wide_category, with_category

from ec2_metadata_core import (
    ConfigError,
    EC2Metadata,
    IMDSTimeoutError,
    IMDSUnavailableError,
    MalformedResponseError,
)
from ec2_metadata_core.bounds import (
    MAX_BODY,
    MAX_LISTING_ENTRIES,
    MAX_PASS_BYTES,
    MAX_TOKEN,
    MAX_UNKNOWN_DEPTH,
    MAX_UNKNOWN_PATHS,
    MAX_USER_DATA,
)
from ec2_metadata_core.errors import IMDSHTTPError, printable
from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.snapshot import snapshot, user_data_json


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def healthy(sim: Simulator) -> Dict[str, Any]:
    return snapshot(EC2Metadata(endpoint=sim.url))


def dump(url: str, *args: str, timeout: float = 60) -> Any:
    return run_cli("dump", "--endpoint", url, *args, timeout=timeout)


# -- finding 5: discovery of unknown categories ----------------------------------------


def test_a_category_with_no_end_is_left_out_and_the_rest_dumped(sim: Simulator) -> None:
    expected = healthy(sim)
    with Hostile(sim, deep_category) as hostile:
        proc = dump(hostile.url)
        # Bounded: the known tree (~110) and the category to its depth limit.
        assert hostile.requests < 200 + 2 * MAX_UNKNOWN_DEPTH
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert json.loads(proc.stdout) == expected  # every known value, nothing of evil/
    assert proc.stderr.splitlines() == [
        "ec2-metadata-core: error: left out: IMDS sent too much for meta-data/evil/: "
        "a category nested deeper than {} levels".format(MAX_UNKNOWN_DEPTH)
    ]


def test_the_library_leaves_the_category_out_and_says_so(sim: Simulator) -> None:
    expected = healthy(sim)
    stats: Dict[str, Any] = {}
    with Hostile(sim, deep_category) as hostile:
        assert snapshot(EC2Metadata(endpoint=hostile.url), stats=stats) == expected
    assert len(stats["refused"]) == 1 and "meta-data/evil/" in stats["refused"][0]


def test_a_category_as_deep_as_allowed_is_read_whole(sim: Simulator) -> None:
    depth = MAX_UNKNOWN_DEPTH - 1  # directories below evil/

    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == "/latest/meta-data/":
            return with_category("evil", "evil/", upstream)
        if path.startswith("/latest/meta-data/evil/"):
            level = path[len("/latest/meta-data/evil/") :].count("/")
            return Answer(200, b"a/\nleaf" if level < depth else b"leaf")
        return None

    with Hostile(sim, rule) as hostile:
        got = snapshot(EC2Metadata(endpoint=hostile.url))
    tree = got["evil"]
    for _ in range(depth):
        assert tree["leaf"] == "a/\nleaf"
        tree = tree["a"]
    assert tree == {"leaf": "leaf"}


def test_a_category_too_wide_is_left_out_within_the_budget(sim: Simulator) -> None:
    expected = healthy(sim)
    with Hostile(sim, wide_category) as hostile:
        proc = dump(hostile.url)
        assert hostile.requests < 200 + MAX_UNKNOWN_PATHS + 100
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == expected
    (line,) = proc.stderr.splitlines()
    assert "past {} paths".format(MAX_UNKNOWN_PATHS) in line and "meta-data/wide/" in line


def test_a_broken_unknown_category_harms_no_known_value(sim: Simulator) -> None:
    expected = healthy(sim)

    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == "/latest/meta-data/":
            return with_category("odd", "odd/\nfine", upstream)
        if path == "/latest/meta-data/odd/":
            return Answer(500)
        if path == "/latest/meta-data/fine":
            return Answer(200, b"kept")
        return None

    with Hostile(sim, rule) as hostile:
        proc = dump(hostile.url, "--attempts", "1")
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {**expected, "fine": "kept"}
    assert proc.stderr.splitlines() == [
        "ec2-metadata-core: error: left out: IMDS answered 500 for /latest/meta-data/odd/"
    ]


# -- listing entries that are not plain names -------------------------------------------


@pytest.mark.parametrize("entry", ["..", ".", "a/b", "x?y", "x#y", "%2e%2e", "a b", "", "\x1b[2J"])
def test_a_listed_name_that_is_not_plain_is_refused_never_requested(
    sim: Simulator, entry: str
) -> None:
    requested = []

    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        requested.append(path)
        if path == "/latest/meta-data/tags/instance/":
            return Answer(200, b"Name\n" + entry.encode() + b"\nRole")
        return None

    with Hostile(sim, rule) as hostile:
        with pytest.raises(MalformedResponseError) as caught:
            EC2Metadata(endpoint=hostile.url).tags  # noqa: B018
        line = cli_error(dump(hostile.url, "--keys", "tags"))
    assert "meta-data/tags/instance/" in str(caught.value) and "plain name" in str(caught.value)
    assert "\x1b" not in line and line.endswith("for meta-data/tags/instance/")
    assert all(
        path.count("/") <= 5 or path.startswith("/latest/meta-data/tags/instance/")
        for path in requested
    )
    assert not [
        p
        for p in requested
        if p.startswith("/latest/meta-data/tags/instance/")
        and p != "/latest/meta-data/tags/instance/"
    ]


def test_a_mac_that_climbs_out_is_refused(sim: Simulator) -> None:
    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == "/latest/meta-data/network/interfaces/macs/":
            return Answer(200, b"../../../iam/security-credentials/")
        return None

    with Hostile(sim, rule) as hostile:
        line = cli_error(dump(hostile.url))
        assert "plain name" in line and "network/interfaces/macs/" in line


# -- finding 6: gzip'd user data ---------------------------------------------------------


def test_a_gzip_bomb_in_user_data_is_not_inflated(sim: Simulator) -> None:
    bomb = gzip.compress(b"\0" * (64 * MAX_USER_DATA), compresslevel=9)
    assert len(bomb) < 128 * 1024
    value = user_data_json(bomb)
    assert value == {
        "encoding": "base64",
        "compression": None,
        "content": base64.b64encode(bomb).decode(),
    }
    sim.set("user-data", {"$base64": base64.b64encode(bomb).decode()})
    proc = dump(sim.url, "--keys", "user_data", "--include-user-data")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["user_data"] == value


def test_gzip_d_user_data_up_to_the_cap_is_text() -> None:
    text = "#!/bin/sh\n" + "x" * (MAX_USER_DATA - 10)
    for member in (gzip.compress(text.encode()), gzip.compress(b"a") + gzip.compress(b"b")):
        value = user_data_json(member)
        assert value["encoding"] == "text" and value["compression"] == "gzip"
        assert value["content"] == gzip.decompress(member).decode()
    assert user_data_json(gzip.compress(text.encode() + b"!"))["encoding"] == "base64"
    truncated = gzip.compress(b"abc")[:-3]
    assert user_data_json(truncated)["compression"] is None
    with pytest.raises(zlib.error):
        zlib.decompress(truncated, 31)


# -- finding 9: escape sequences in error messages ---------------------------------------

TITLE = "evil\x1b]0;PWNED-TITLE\x07\x1b[2J"


def test_escape_sequences_from_the_endpoint_are_escaped_in_errors(sim: Simulator) -> None:
    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == "/latest/meta-data/":
            return with_category("x", TITLE + "/", upstream)
        return None

    with Hostile(sim, rule) as hostile:
        proc = dump(hostile.url)
    assert proc.returncode == 1
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert "evil\\x1b]0;PWNED-TITLE\\x07\\x1b[2J" in proc.stderr


def test_every_error_message_is_printable() -> None:
    error = IMDSHTTPError("meta-data/" + TITLE + "\u2028\u202e", 500)
    assert (
        str(error)
        == "IMDS answered 500 for meta-data/evil\\x1b]0;PWNED-TITLE\\x07\\x1b[2J\\u2028\\u202e"
    )
    assert printable("caf\u00e9 \u65e5\u672c") == "caf\u00e9 \u65e5\u672c"  # letters stay


# -- finding 8: an overall deadline, and size caps -----------------------------------------

TOKEN = "/latest/api/token"


def stall_every_get(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    return None if path == TOKEN else Answer(200, b"x", stall=30)


def test_a_gather_that_stalls_ends_by_the_default_deadline(sim: Simulator) -> None:
    # The default deadline: 4 x attempts x (timeout + 1) = 9.6 s here (24 s at
    # the defaults, where the old client took 90 s; here it took 20 s).
    assert EC2Metadata(timeout=0.2, attempts=2).client.pass_seconds() == pytest.approx(9.6)
    with Hostile(sim, stall_every_get) as hostile:
        started = time.monotonic()
        proc = dump(hostile.url, "--timeout", "0.2", "--attempts", "2")
        took = time.monotonic() - started
    line = cli_error(proc)
    assert "within the 9.6s a whole read may take" in line or "within 0.2s" in line, line
    assert took < 16, took


def test_the_deadline_setting_bounds_a_gather(sim: Simulator) -> None:
    with Hostile(sim, stall_every_get) as hostile:
        started = time.monotonic()
        line = cli_error(dump(hostile.url, "--deadline", "1.5"))
        took = time.monotonic() - started
        metadata = EC2Metadata(endpoint=hostile.url, deadline=1.5)
        with pytest.raises(IMDSTimeoutError):
            snapshot(metadata)
    assert "IMDS" in line and took < 10, took
    with pytest.raises(ConfigError, match="deadline must be between"):
        EC2Metadata(deadline=0).client  # noqa: B018


def test_a_long_retry_after_fails_its_request_and_stalls_nothing(sim: Simulator) -> None:
    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == "/latest/meta-data/instance-id":
            return Answer(503, headers=(("Retry-After", "60"),))
        return None

    with Hostile(sim, rule) as hostile:
        started = time.monotonic()
        line = cli_error(dump(hostile.url))
        took = time.monotonic() - started
    assert line.endswith("IMDS answered 503 for /latest/meta-data/instance-id")
    assert took < 15, took  # the old client held every send back 60 s


def test_a_huge_token_is_refused_in_one_line(sim: Simulator) -> None:
    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == TOKEN:
            return Answer(
                200, b"A" * (10 << 20), headers=(("X-aws-ec2-metadata-token-ttl-seconds", "21600"),)
            )
        return None

    with Hostile(sim, rule) as hostile:
        line = cli_error(dump(hostile.url))
        assert hostile.requests <= 3  # the PUT, tried once per attempt at most: no GET
    assert ("token" in line and "larger than" in line) or "a token is at most" in line


def test_a_token_over_the_cap_but_under_the_body_cap_is_refused(sim: Simulator) -> None:
    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == TOKEN:
            return Answer(200, b"A" * (MAX_TOKEN + 1))
        return None

    with Hostile(sim, rule) as hostile:
        line = cli_error(dump(hostile.url))
        assert hostile.requests == 1
    assert line == (
        "ec2-metadata-core: error: IMDS answered the token request with {} bytes "
        "(a token is at most {})".format(MAX_TOKEN + 1, MAX_TOKEN)
    )


def test_a_listing_of_100000_tags_is_refused_without_reading_them(sim: Simulator) -> None:
    names = "\n".join("t{}".format(i) for i in range(100_000)).encode()

    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == "/latest/meta-data/tags/instance/":
            return Answer(200, names)
        return None

    with Hostile(sim, rule) as hostile:
        line = cli_error(dump(hostile.url))
        assert hostile.requests < 200
    assert line.endswith(
        "IMDS sent too much for meta-data/tags/instance/: a listing of 100000 entries, "
        "more than {}".format(MAX_LISTING_ENTRIES)
    )


def test_a_body_over_the_cap_is_refused(sim: Simulator) -> None:
    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == "/latest/meta-data/ami-id":
            return Answer(200, b"a" * (MAX_BODY + 1))
        return None

    with Hostile(sim, rule) as hostile:
        line = cli_error(dump(hostile.url))
    assert line.endswith(
        "(GET /latest/meta-data/ami-id): Content-Length 1048577 (body larger than 1024 KiB)"
    )


def test_the_answers_of_one_gather_are_capped_in_all(sim: Simulator) -> None:
    big = b"v" * (MAX_BODY - 1)

    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path.startswith("/latest/meta-data/") and not path.endswith("/"):
            status, _, _ = upstream()
            return Answer(200, big) if status == 200 else None
        return None

    with Hostile(sim, rule) as hostile:
        line = cli_error(dump(hostile.url))
    assert "the answers of one read past {} MiB".format(MAX_PASS_BYTES >> 20) in line


# -- finding 7: a caller's requests.Session or urllib3 pool -----------------------------


def trickle(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    if path == "/latest/meta-data/instance-id":
        return Answer(200, b"i-" + b"0" * 200, drip=0.3)
    return None


def caller_pools() -> List[Any]:
    import requests
    import urllib3

    return [requests.Session(), urllib3.PoolManager()]


@pytest.mark.parametrize("kind", ["requests", "urllib3"])
def test_a_trickled_body_ends_within_the_timeout_on_a_callers_pool(
    sim: Simulator, kind: str
) -> None:
    pool = caller_pools()[0 if kind == "requests" else 1]
    with Hostile(sim, trickle) as hostile:
        metadata = EC2Metadata(pool, endpoint=hostile.url, timeout=0.5, attempts=1)
        started = time.monotonic()
        with pytest.raises(IMDSTimeoutError):
            metadata.instance_id  # noqa: B018
        took = time.monotonic() - started
    assert took < 10, took  # the old transports: 60 s, a byte every 0.3 s


@pytest.mark.parametrize("kind", ["requests", "urllib3"])
def test_a_callers_pool_caps_the_body_and_inflates_nothing(sim: Simulator, kind: str) -> None:
    bomb = gzip.compress(b"\0" * (32 << 20))

    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == "/latest/user-data":
            return Answer(200, bomb, headers=(("Content-Encoding", "gzip"),))
        if path == "/latest/meta-data/ami-id":
            return Answer(200, b"a" * (MAX_BODY + 1))
        return None

    with Hostile(sim, rule) as hostile:
        metadata = EC2Metadata(caller_pools()[0 if kind == "requests" else 1], endpoint=hostile.url)
        assert metadata.user_data == bomb  # as served, not 32 MiB of zeros
        with pytest.raises(IMDSUnavailableError, match="body larger than 1024 KiB"):
            metadata.ami_id  # noqa: B018


# -- finding 10: the simulator's control path and DNS rebinding -------------------------


PWNED = "meta-data/tags/instance/Pwned"
PWN = urllib.parse.quote(json.dumps({"path": PWNED, "value": "yes"}))


def control(sim: Simulator, headers: Dict[str, str]) -> Tuple[int, str]:
    import http.client

    connection = http.client.HTTPConnection(sim.host, sim.port, timeout=10)
    try:
        connection.putrequest("POST", "/_simulator/set?args=" + PWN, skip_host=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "attacker.example:1338"},  # a name of the attacker's, resolved to 127.0.0.1
        {"Host": "127.0.0.1.attacker.example"},
        {},  # no Host at all
        {"Host": "127.0.0.1", "Origin": "http://attacker.example"},
        {"Host": "127.0.0.1", "Origin": "null"},
        {"Host": "localhost", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_control_refuses_a_request_a_web_page_could_send(
    sim: Simulator, headers: Dict[str, str]
) -> None:
    status, body = control(sim, headers)
    assert status == 403, body
    assert sim.read(PWNED) is None


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "127.0.0.1", "LOCALHOST"])
def test_control_serves_a_loopback_host(sim: Simulator, host: str) -> None:
    status, body = control(
        sim, {"Host": host.format(port=sim.port), "Origin": "http://127.0.0.1:8000"}
    )
    assert status == 200, body
    assert sim.read(PWNED) == b"yes"


# -- finding 11: files with secrets --------------------------------------------------------


def test_output_writes_a_file_only_its_owner_can_read(sim: Simulator, tmp_path: Path) -> None:
    target = tmp_path / "ec2.env"
    target.write_text("old")
    target.chmod(0o644)
    proc = run_cli(
        "dump",
        "--endpoint",
        sim.url,
        "--format",
        "env",
        "--include-secrets",
        "--output",
        str(target),
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "export ec2_iam_security_credentials_SecretAccessKey=" in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ec2.env"]  # no temporary left


def test_output_replaces_a_symlink_and_never_writes_through_it(
    sim: Simulator, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("root's file")
    link = tmp_path / "user-data.bin"
    link.symlink_to(victim)
    proc = run_cli("get", "user-data", "--endpoint", sim.url, "--output", str(link))
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "root's file"
    assert not link.is_symlink() and stat.S_IMODE(link.stat().st_mode) == 0o600
    assert link.read_bytes() == sim.read("user-data") + b"\n"


def test_output_into_a_missing_directory_is_one_line(sim: Simulator, tmp_path: Path) -> None:
    line = cli_error(run_cli("dump", "--endpoint", sim.url, "-o", str(tmp_path / "no" / "x")))
    assert "cannot write the output" in line and "No such file or directory" in line


def test_output_is_written_under_any_umask(sim: Simulator, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    script = 'umask 0; exec "$0" -m ec2_metadata_core dump --endpoint {} -o {}'.format(
        sim.url, target
    )
    subprocess.run(["sh", "-c", script, sys.executable], check=True, timeout=60)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text())["instance_id"]


# -- finding 12: what a format cannot carry ------------------------------------------------


def test_a_nul_in_a_tag_is_refused_by_the_env_format_in_one_line(sim: Simulator) -> None:
    sim.set("meta-data/tags/instance/Note", "a\0b")
    line = cli_error(dump(sim.url, "--format", "env"))
    assert line == (
        "ec2-metadata-core: error: ec2_tags_Note holds a NUL character, which a shell "
        "variable cannot carry: use --format json or flat"
    )
    assert json.loads(dump(sim.url, "--format", "json").stdout)["tags"]["Note"] == "a\0b"


@pytest.mark.parametrize("value", ["\x85", "a\x85b", "\u2028", "x\u2029", "\x85\x85 \n"])
def test_yaml_output_loads_back_every_line_break_character(sim: Simulator, value: str) -> None:
    import yaml

    sim.set("meta-data/tags/instance/Note", value)
    proc = dump(sim.url, "--format", "yaml", "--keys", "tags")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["tags"]["Note"] == value
