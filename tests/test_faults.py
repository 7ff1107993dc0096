"""The fault matrix: every failure IMDS can show, through every face, against the simulator.

Each row of ``ROWS`` sets the simulator misbehaving or serving something odd,
then reads the whole instance through a face: the library (``snapshot``, plus
the one attribute the row is about), the CLI (``dump`` in a child process),
the Ansible facts module and the Salt grains (both in this process). Either
the face gives exactly what a healthy IMDS gives (after retries, a token
renewal, or with IMDSv1 when the user allowed it), or one clear line saying
why not: never a value quietly missing, never a traceback. The fault matrix
in the README is this table, row for row.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Type

import pytest
from fault_support import (
    FACES,
    UNRESOLVABLE,
    Outcome,
    ansible_facts_module,
    ansible_gather,
    cli_dump,
    cli_error,
    free_port,
    grains_gather,
    grains_opts,
    no_dns,
    no_dns_env,
    run_cli,
)

from ec2_metadata_core import (
    EC2Metadata,
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    IMDSUnavailableError,
    MalformedResponseError,
    PathNotFoundError,
    TokenError,
    TokenTimeoutError,
)
from ec2_metadata_core.simulator import SCENARIOS, Simulator, scenario
from ec2_metadata_core.snapshot import snapshot, to_json

INSTANCE_ID = "i-0123456789abcdef0"
SEPARATE_PROCESS_FACES = ("library", "cli")
ROLE = "web-app-role"
TOKEN_PUT = "/latest/api/token"
Knob = Callable[[Simulator], None]


class Row(NamedTuple):
    """One case of the matrix.

    ``data`` changes what the instance holds (part of the right answer);
    ``knobs`` make the service misbehave afterwards. ``error`` is the
    library's exception type, ``None`` when every face must give the right
    value; ``says`` is in every face's message. ``grains_absent``: the grain's
    probe takes this for "not on EC2" (no grain; one warning, since the grains
    face names its endpoint in the minion config). ``check`` looks at the
    simulator's counters to prove the fault really happened. ``endpoint``: the
    URL the faces are given instead of the simulator's. ``faces``: rows that
    take seconds run on the library and the CLI only (the Ansible module and
    the grains run the same core, shipped byte for byte).
    """

    id: str
    knobs: Knob
    data: Optional[Knob] = None
    options: Dict[str, Any] = {}
    error: Optional[Type[IMDSError]] = None
    says: str = ""
    attribute: Optional[str] = None
    grains_absent: bool = False
    check: Optional[Knob] = None
    refused: bool = False
    endpoint: Optional[Callable[[Simulator], str]] = None
    faces: Tuple[str, ...] = FACES


def nothing(sim: Simulator) -> None:
    """No misbehaviour: the row is about what the instance holds."""


def faults(**fault: Any) -> Knob:
    """A Fault made afresh for each test (a Fault counts its hits)."""

    def apply(sim: Simulator) -> None:
        sim.add_fault(**fault)

    return apply


def serve(path: str, value: Any) -> Knob:
    def apply(sim: Simulator) -> None:
        sim.set(path, value)

    return apply


def knobs(**values: Any) -> Knob:
    def apply(sim: Simulator) -> None:
        for name, value in values.items():
            setattr(sim, name, value)

    return apply


def pushes_back(name: str) -> Knob:
    """The service pushing back as the named scenario (simulator/scenarios.py) does."""

    def apply(sim: Simulator) -> None:
        sim.configure(**scenario(name))

    return apply


# Scenarios the Ansible module and the grains also run (the others: library and CLI).
ALL_FACES_SCENARIOS = ("listen-queue-5", "503-every-5th-get")
VANISHING_TAG = "removed-in-between"


def together(*steps: Knob) -> Knob:
    def apply(sim: Simulator) -> None:
        for step in steps:
            step(sim)

    return apply


def raw(data: bytes) -> Dict[str, str]:
    return {"$base64": base64.b64encode(data).decode("ascii")}


def many_tags(count: int) -> Dict[str, str]:
    return {"k{:04d}".format(i): "value {}".format(i) for i in range(count)}


def hit_fully(sim: Simulator) -> None:
    """Every scripted fault with a count was spent: the burst really happened."""
    for fault in sim.faults:
        assert fault.times is None or fault.hits == fault.times, fault


def asked_for_the_vanished_tag(sim: Simulator) -> None:
    path = "GET /latest/meta-data/tags/instance/" + VANISHING_TAG
    assert sim.stats.by_path[path] >= 1 and sim.stats.by_status[404] >= 1


def renewed_mid_gather(sim: Simulator) -> None:
    assert sim.stats.token_requests >= 2  # the gather outlived its first token


def renewed_after_401(sim: Simulator) -> None:
    hit_fully(sim)
    assert sim.stats.token_requests == 2


def threw_500s(sim: Simulator) -> None:
    assert sim.stats.by_status[500] > 0


def no_token_less_get(sim: Simulator) -> None:
    """IMDSv1 was not tried: not one GET went out."""
    assert not [key for key in sim.stats.by_path if key.startswith("GET ")]


def served_without_token(sim: Simulator) -> None:
    assert sim.stats.by_status[200] > 50  # the v1 gather, the refused PUT aside


def malformed(path: str, body: str, attribute: str, expected: str = "JSON") -> Row:
    return Row(
        "malformed-" + path.split("/", 1)[1].replace("/", "-"),
        serve(path, {"$text": body}),
        error=MalformedResponseError,
        says="malformed {} for {}".format(expected, path),
        attribute=attribute,
    )


def refused_put(status: int) -> Row:
    return Row(
        "token-put-{}-no-fallback-by-default".format(status),
        together(knobs(imdsv1=True), faults(path=TOKEN_PUT, method="PUT", status=status)),
        error=TokenError,
        says="token request",
        # 404/405: no IMDSv2 here, as off EC2. 403 is an instance with IMDS
        # turned off: no grain either, but one warning says so.
        grains_absent=status in (404, 405),
        check=no_token_less_get,
    )


def fallback_put(status: int) -> Row:
    return Row(
        "token-put-{}-imdsv1-when-allowed".format(status),
        together(knobs(imdsv1=True), faults(path=TOKEN_PUT, method="PUT", status=status)),
        options={"allow_imdsv1": True},
        check=served_without_token,
    )


ROWS: List[Row] = [
    # -- the token
    Row(
        "token-expires-mid-gather",
        # 1100 requests at 16 in flight: over 1 s, so many wait in the queue
        # while the token they were queued with expires.
        knobs(token_ttl_cap=1, latency=0.02),
        data=serve("meta-data/tags/instance", many_tags(1000)),
        check=renewed_mid_gather,
        faces=SEPARATE_PROCESS_FACES,
    ),
    Row(
        "401-once-on-a-get",
        faults(path="/latest/meta-data/instance-id", status=401, times=1),
        check=renewed_after_401,
    ),
    Row(
        "401-always-on-a-get",
        faults(path="/latest/meta-data/instance-id", status=401),
        error=IMDSHTTPError,
        says="401",
        attribute="instance_id",
    ),
    *[refused_put(status) for status in (400, 403, 404, 405)],
    *[fallback_put(status) for status in (400, 403, 404, 405)],
    Row(
        "token-malformed",
        faults(path=TOKEN_PUT, method="PUT", body="tok en\r\nX-Injected: 1"),
        error=TokenError,
        says="malformed token",
    ),
    # -- throttling and server errors
    Row(
        "burst-of-429",
        faults(path="/latest/meta-data/*", method="GET", status=429, times=8),
        check=hit_fully,
    ),
    Row(
        "burst-of-503",
        faults(path="/latest/meta-data/*", method="GET", status=503, times=8),
        check=hit_fully,
    ),
    Row(
        "intermittent-500",
        knobs(error_rate=0.1),
        options={"attempts": 6},  # a path fails 6 times in a row once in a million
        check=threw_500s,
    ),
    Row(
        "500-on-every-attempt",
        faults(path="/latest/meta-data/public-ipv4", status=500),
        error=IMDSHTTPError,
        says="500",
        attribute="public_ipv4",
    ),
    # -- the service as it is on the wire (docs/imds.md, "On the wire")
    *[
        Row(
            "service-" + name,
            pushes_back(name),
            faces=FACES if name in ALL_FACES_SCENARIOS else SEPARATE_PROCESS_FACES,
        )
        for name in SCENARIOS
    ],
    Row("service-keeps-connections-alive", knobs(keep_alive=True)),
    Row(
        "tag-removed-between-listing-and-read",
        knobs(vanishing_tag=VANISHING_TAG),
        check=asked_for_the_vanished_tag,
    ),
    Row(
        "categories-listing-always-503",
        faults(path="/latest/meta-data/", status=503),
        error=IMDSHTTPError,
        says="503 for /latest/meta-data/",
    ),
    Row(
        "tags-listing-always-503",
        faults(path="/latest/meta-data/tags/instance/", status=503),
        error=IMDSHTTPError,
        says="503 for /latest/meta-data/tags/instance/",
    ),
    # -- the connection
    Row(
        "connection-resets",
        faults(path="/latest/meta-data/*", method="GET", action="reset", times=6),
        check=hit_fully,
    ),
    Row(
        "connection-reset-on-every-attempt",
        faults(path="/latest/meta-data/instance-id", action="reset"),
        error=IMDSUnavailableError,
        says="dropped the connection",
        attribute="instance_id",
    ),
    Row(
        "slower-than-the-timeout-once",
        faults(path="/latest/meta-data/instance-id", action="delay", delay=0.6, times=1),
        options={"timeout": 0.3},
        check=hit_fully,
    ),
    Row(
        "slower-than-the-timeout-always",
        faults(path="/latest/meta-data/instance-id", action="delay", delay=0.6),
        options={"timeout": 0.3, "attempts": 1},
        error=IMDSTimeoutError,
        says="no answer from IMDS",
        attribute="instance_id",
    ),
    Row(
        "silent-endpoint-hop-limit",
        knobs(silent=True),
        options={"timeout": 0.2, "attempts": 1},
        error=TokenTimeoutError,
        says="--http-put-response-hop-limit 2",
        grains_absent=True,
    ),
    Row(
        "refused-port",
        nothing,
        options={"attempts": 2},
        error=IMDSUnavailableError,
        says="cannot reach IMDS",
        grains_absent=True,
        refused=True,
    ),
    Row(
        "https-endpoint-on-plain-http",
        nothing,
        options={"attempts": 2},
        error=IMDSUnavailableError,
        says="TLS handshake failed: WRONG_VERSION_NUMBER (IMDS speaks plain HTTP",
        grains_absent=True,
        endpoint=lambda sim: sim.url.replace("http://", "https://"),
    ),
    Row(
        "host-name-that-does-not-resolve",
        nothing,
        options={"attempts": 2},
        error=IMDSUnavailableError,
        says="cannot resolve the host name",
        grains_absent=True,
        endpoint=lambda sim: "http://{}:{}".format(UNRESOLVABLE, sim.port),
    ),
    Row(
        "host-name-the-idna-codec-refuses",
        nothing,
        options={"attempts": 2},
        error=IMDSUnavailableError,
        says="invalid host name or port",
        grains_absent=True,
        endpoint=lambda sim: "http://{}.example".format("a" * 64),
    ),
    # -- bodies
    Row(
        "truncated-bodies",
        faults(path="/latest/meta-data/*", method="GET", action="truncate", times=4),
        check=hit_fully,
    ),
    Row(
        "truncated-on-every-attempt",
        faults(path="/latest/meta-data/instance-type", action="truncate"),
        error=IMDSUnavailableError,
        says="connection closed mid-response",
        attribute="instance_type",
    ),
    malformed("meta-data/iam/info", '{"InstanceProfileArn": ', "iam_info"),
    malformed("dynamic/instance-identity/document", "{not json", "region"),
    malformed("meta-data/spot/instance-action", '{"action": "stop", "time', "spot_instance_action"),
    malformed("meta-data/events/maintenance/scheduled", "[{]", "events_maintenance_scheduled"),
    malformed("meta-data/events/maintenance/history", "[NaN]", "events_maintenance_history"),
    malformed(
        "meta-data/events/recommendations/rebalance",
        '{"noticeTime": 1e999}',
        "events_recommendations_rebalance",
    ),
    Row(
        "identity-document-without-region",
        serve("dynamic/instance-identity/document", {"$json": {"accountId": "123456789012"}}),
        error=MalformedResponseError,
        says="'region'",
        attribute="region",
    ),
    Row(
        "iam-info-without-profile-arn",
        serve("meta-data/iam/info", {"$json": {"InstanceProfileId": "AIPAEXAMPLE"}}),
        error=MalformedResponseError,
        says="'InstanceProfileArn'",
        attribute="instance_profile_name",
    ),
    Row(
        "spot-time-out-of-range",
        serve(
            "meta-data/spot/instance-action",
            {"$json": {"action": "stop", "time": "9999-12-31T23:59:59-23:59"}},
        ),
        error=MalformedResponseError,
        says="ISO 8601 time",
        attribute="spot_instance_action",
    ),
    Row(
        "non-utf8-text-value",
        serve("meta-data/instance-type", raw(b"m5.\xfflarge")),
        error=MalformedResponseError,
        says="malformed UTF-8 text for meta-data/instance-type",
        attribute="instance_type",
    ),
    Row(
        "non-utf8-tag-value",
        serve("meta-data/tags/instance/Role", raw(b"w\xe9b")),
        error=MalformedResponseError,
        says="malformed UTF-8 text for meta-data/tags/instance/Role",
    ),
    Row(
        "gzip-user-data",
        nothing,
        data=serve("user-data", raw(gzip.compress(b"#cloud-config\nruncmd: [true]\n"))),
        options={"include_user_data": True},
    ),
    Row(
        "binary-user-data",
        nothing,
        data=serve("user-data", raw(bytes(range(256)))),
        options={"include_user_data": True},
    ),
    Row(
        "corrupt-gzip-user-data",
        nothing,
        data=serve("user-data", raw(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not deflate")),
        options={"include_user_data": True},
    ),
    Row(
        "5000-tags",
        nothing,
        data=serve("meta-data/tags/instance", many_tags(5000)),
        faces=SEPARATE_PROCESS_FACES,
    ),
    Row("non-ascii-category-name", nothing, data=serve("meta-data/n\u00e9w-\u20ac", "x y")),
]


@pytest.fixture(scope="module")
def facts_module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return ansible_facts_module(tmp_path_factory.mktemp("collection"))


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=7) as simulator:
        yield simulator


def face_outcome(
    face: str,
    url: str,
    options: Dict[str, Any],
    facts_module: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> Outcome:
    if face == "cli":
        return cli_dump(url, options, env=no_dns_env(tmp_path))
    if face == "ansible":
        return ansible_gather(facts_module, url, options)
    if face == "grains":
        caplog.set_level(logging.DEBUG)
        return grains_gather(grains_opts(url, tmp_path / "cache", options), caplog.records)
    client_options = {k: v for k, v in options.items() if k != "include_user_data"}
    metadata = EC2Metadata(endpoint=url, **client_options)
    try:
        value = snapshot(metadata, include_user_data=bool(options.get("include_user_data")))
    except IMDSError as exc:
        assert "\n" not in str(exc)
        return Outcome(None, "{}: {}".format(type(exc).__name__, exc))
    return Outcome(value, None)


CASES = [
    pytest.param(row, face, id="{}-{}".format(row.id, face)) for row in ROWS for face in row.faces
]
_healthy: Dict[str, Dict[str, Any]] = {}


def healthy_snapshot(row: Row, sim: Simulator) -> Dict[str, Any]:
    """What the instance gives before the row's knobs turn (once per row, not per face)."""
    if row.id not in _healthy:
        include_user_data = bool(row.options.get("include_user_data"))
        _healthy[row.id] = snapshot(
            EC2Metadata(endpoint=sim.url), include_user_data=include_user_data
        )
    return _healthy[row.id]


@pytest.mark.parametrize(("row", "face"), CASES)
def test_fault_matrix(
    row: Row,
    face: str,
    sim: Simulator,
    facts_module: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if row.data is not None:
        row.data(sim)
    expected = healthy_snapshot(row, sim) if row.error is None else None
    row.knobs(sim)
    sim.reset_stats()
    url = "http://127.0.0.1:{}".format(free_port()) if row.refused else sim.url
    if row.endpoint is not None:
        url = row.endpoint(sim)

    with no_dns(monkeypatch):
        got = face_outcome(face, url, row.options, facts_module, tmp_path, caplog)

    if row.error is None:
        assert got.error is None, got.error
        assert got.value == expected
    elif face == "grains" and row.grains_absent:
        # "Not on EC2" at the endpoint the minion config names: no grain, one
        # warning, probed again soon (quiet only at an endpoint not configured).
        assert got.value is None and got.error is not None
        assert "ec2_metadata.endpoint is set" in got.error, got.error
    else:
        assert got.value is None
        assert got.error is not None and row.says in got.error, got.error
        if face == "library":
            assert got.error.startswith(row.error.__name__ + ":"), got.error
    if row.check is not None:
        row.check(sim)  # the grain's probe token serves its gather: one count for every face


@pytest.mark.parametrize("row", [r for r in ROWS if r.attribute], ids=lambda r: r.id)
def test_the_attribute_a_row_is_about_raises_the_same_error(row: Row, sim: Simulator) -> None:
    row.knobs(sim)
    options = {k: v for k, v in row.options.items() if k != "include_user_data"}
    metadata = EC2Metadata(endpoint=sim.url, **options)
    assert row.error is not None and row.attribute is not None
    with pytest.raises(row.error) as caught:
        getattr(metadata, row.attribute)
    assert row.says in str(caught.value)


# -- rows the table alone does not show ------------------------------------------------


def test_the_aws_variable_allows_imdsv1_for_the_library_and_the_cli(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.imdsv1 = True
    sim.add_fault(path=TOKEN_PUT, method="PUT", status=405)
    monkeypatch.setenv("AWS_EC2_METADATA_V1_DISABLED", "false")
    assert EC2Metadata(endpoint=sim.url).instance_id == INSTANCE_ID
    proc = run_cli("get", "instance-id", "--endpoint", sim.url)
    assert (proc.returncode, proc.stdout) == (0, INSTANCE_ID + "\n"), proc.stderr
    monkeypatch.setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
    with pytest.raises(TokenError, match="falling back to IMDSv1 is off"):
        EC2Metadata(endpoint=sim.url).instance_id  # noqa: B018
    line = cli_error(run_cli("get", "instance-id", "--endpoint", sim.url))
    assert "does not support IMDSv2" in line


def test_a_refused_port_fails_at_once_not_after_the_timeouts() -> None:
    # Behaviour, not speed: waiting for even one 5 s timeout would be the bug.
    url = "http://127.0.0.1:{}".format(free_port())
    started = time.monotonic()
    with pytest.raises(IMDSUnavailableError) as caught:
        EC2Metadata(endpoint=url, timeout=5, attempts=3).instance_id  # noqa: B018
    assert time.monotonic() - started < 5
    assert not isinstance(caught.value, IMDSTimeoutError)
    started = time.monotonic()
    line = cli_error(run_cli("dump", "--endpoint", url, "--timeout", "5", "--attempts", "3"))
    assert time.monotonic() - started < 5
    assert "cannot reach IMDS" in line and "Connection refused" in line


def test_cli_get_reads_through_faults(sim: Simulator) -> None:
    sim.set("meta-data/tags/instance", many_tags(1000))
    sim.add_fault(path="/latest/meta-data/instance-id", status=401, times=1)
    sim.add_fault(path="/latest/meta-data/tags/instance/k0999", status=503, times=2)
    proc = run_cli("get", "instance-id", "--endpoint", sim.url)
    assert (proc.returncode, proc.stdout) == (0, INSTANCE_ID + "\n"), proc.stderr
    proc = run_cli("get", "tags.k0999", "--endpoint", sim.url)
    assert (proc.returncode, proc.stdout) == (0, "value 999\n"), proc.stderr
    assert json.loads(run_cli("get", "tags", "--endpoint", sim.url).stdout) == many_tags(1000)


def test_cli_get_of_a_malformed_value_is_one_line(sim: Simulator) -> None:
    sim.set("dynamic/instance-identity/document", {"$json": {"accountId": "123456789012"}})
    line = cli_error(run_cli("get", "region", "--endpoint", sim.url))
    assert "dynamic/instance-identity/document" in line
    sim.set("meta-data/instance-type", raw(b"\xff"))
    assert "UTF-8" in cli_error(run_cli("get", "instance-type", "--endpoint", sim.url))


def test_cli_get_user_data_hands_out_the_bytes_as_served(sim: Simulator) -> None:
    for body in (gzip.compress(b"#!/bin/sh\n"), bytes(range(256)), b"\x1f\x8b\x08broken"):
        sim.set("user-data", raw(body))
        proc = run_cli_bytes("get", "user-data", "-n", "--endpoint", sim.url)
        assert proc == body


def run_cli_bytes(*args: str) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "ec2_metadata_core", *args],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_tags_by_the_thousand_are_all_read_with_their_values(sim: Simulator) -> None:
    tags = many_tags(5000)
    sim.set("meta-data/tags/instance", tags)
    assert snapshot(EC2Metadata(endpoint=sim.url), keys=["tags"]) == {"tags": tags}
    # The lazy mapping: every name from one listing, a value fetched when read.
    lazy = EC2Metadata(endpoint=sim.url).tags
    assert list(lazy) == list(tags)
    sample = [*list(tags)[::250], "k4999"]
    assert {name: lazy[name] for name in sample} == {name: tags[name] for name in sample}
    assert sim.stats.token_requests == 2  # one per object, whatever the count of tags


# -- a service that pushes back, gather after gather --------------------------------------

GATHERS_PER_SCENARIO = 5


def pushed_back(sim: Simulator) -> int:
    """How many times the simulator pushed back (cut, throttled, failed or never answered)."""
    stats = sim.stats
    unanswered = stats.requests - sum(stats.by_status.values())
    pushed = stats.over_capacity + stats.throttled + unanswered
    failed = sum(n for status, n in stats.by_status.items() if status >= 500 or status == 429)
    return pushed + failed


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_gather_after_gather_equals_a_healthy_run(name: str) -> None:
    """Several whole gathers in a row (a rate limit's bucket drains across them)."""
    with Simulator(seed=11) as sim:
        expected = snapshot(EC2Metadata(endpoint=sim.url))
        sim.configure(**scenario(name))
        sim.reset_stats()
        for _ in range(GATHERS_PER_SCENARIO):
            assert snapshot(EC2Metadata(endpoint=sim.url)) == expected
        if sim.max_connections is not None:
            assert sim.stats.peak_connections <= sim.max_connections
        elif name not in ("listen-queue-5", "http10"):  # nothing to count for those two
            assert pushed_back(sim) > 0, sim.stats


@pytest.mark.parametrize("name", ["none", "4-connections", "bucket-200-depth-20"])
def test_concurrent_gathers_all_equal_a_healthy_run(name: str) -> None:
    """Eight gathers at once against one service, each with a client of its own."""
    with Simulator(seed=5) as sim:
        expected = snapshot(EC2Metadata(endpoint=sim.url))
        if name != "none":
            sim.configure(**scenario(name))
        results: List[Any] = [None] * 8

        def gather(index: int) -> None:
            try:
                results[index] = snapshot(EC2Metadata(endpoint=sim.url))
            except IMDSError as exc:
                results[index] = exc

        threads = [threading.Thread(target=gather, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert all(result == expected for result in results), [r for r in results if r != expected][
            :1
        ]


def test_retry_after_is_honoured_by_the_whole_gather(sim: Simulator) -> None:
    sim.add_fault(
        path="/latest/meta-data/instance-id", status=503, headers={"Retry-After": "1"}, times=1
    )
    metadata = EC2Metadata(endpoint=sim.url)
    started = time.monotonic()
    assert snapshot(metadata, keys=["instance_id"]) == {"instance_id": INSTANCE_ID}
    # Behaviour, not speed: the retry waited for the service's second, not the usual back-off.
    assert time.monotonic() - started >= 1.0


def test_a_vanished_tag_is_left_out_alone_in_the_cli(sim: Simulator) -> None:
    healthy = json.loads(run_cli("dump", "--endpoint", sim.url).stdout)
    sim.vanishing_tag = VANISHING_TAG
    proc = run_cli("dump", "--endpoint", sim.url)
    assert (proc.returncode, proc.stderr) == (0, "")
    dumped = json.loads(proc.stdout)
    assert dumped["tags"] == healthy["tags"] and len(dumped["tags"]) == 6
    assert dumped == healthy
    # The library's lazy mapping still names it (the listing did) and says it is gone.
    tags = EC2Metadata(endpoint=sim.url).tags
    assert VANISHING_TAG in tags
    with pytest.raises(PathNotFoundError):
        tags[VANISHING_TAG]
    assert tags.present() == healthy["tags"]


def test_a_listing_that_always_fails_fails_the_dump_naming_it(sim: Simulator) -> None:
    sim.add_fault(path="/latest/meta-data/block-device-mapping/", status=500)
    line = cli_error(run_cli("dump", "--endpoint", sim.url))
    assert "500 for /latest/meta-data/block-device-mapping/" in line


# -- load --------------------------------------------------------------------------------

# Every cached value of the instance, nested ones included (interfaces, tags, keys).
CACHED = [
    "ami_id",
    "ami_launch_index",
    "availability_zone",
    "block_device_mapping",
    "iam_info",
    "instance_id",
    "instance_identity_document",
    "instance_profile_name",
    "instance_type",
    "mac",
    "network_interfaces",
    "private_ipv4",
    "public_keys",
    "region",
    "account_id",
    "security_groups",
    "tags",
    "user_data",
]


@pytest.mark.imds_simulator(latency=0.005)
def test_64_threads_on_one_object_one_token_each_path_once(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    barrier = threading.Barrier(64)
    results: List[Any] = [None] * 64
    errors: List[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            names = CACHED[index % len(CACHED) :] + CACHED[: index % len(CACHED)]
            results[index] = {name: to_json(getattr(metadata, name)) for name in names}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert errors == []
    assert all(result == results[0] for result in results)
    assert results[0]["region"] == "eu-central-1"
    stats = imds_simulator.stats
    assert stats.token_requests == 1
    repeated = {path: n for path, n in stats.by_path.items() if n != 1}
    assert repeated == {}
    assert set(stats.by_status) <= {200, 404}


def test_a_long_lived_object_outlives_many_tokens(sim: Simulator) -> None:
    """A daemon keeps one object for hours: tokens expire under it and are renewed."""
    sim.token_ttl_cap = 1  # the client asks for 6 hours and is granted 1 s
    metadata = EC2Metadata(endpoint=sim.url)
    notice = {"action": "terminate", "time": "2026-11-26T12:00:00Z"}
    for lifetime in range(3):
        if lifetime:
            time.sleep(1.0)  # the token granted last round has run out
        assert metadata.instance_id == INSTANCE_ID
        assert metadata.iam_role_names == [ROLE]  # uncached: read every time
        assert snapshot(metadata, keys=["region", "tags"])["tags"]["Role"] == "web"
        if lifetime == 2:
            sim.set("meta-data/spot/instance-action", {"$json": notice})
            assert to_json(metadata.spot_instance_action) == notice
    stats = sim.stats
    assert stats.token_requests == 3  # one per lifetime
    assert stats.by_status[401] == 0  # renewed ahead of expiry, never refused
