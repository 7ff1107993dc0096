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
import zlib
from typing import Any, Dict, Iterator, Optional

import pytest
from fault_support import cli_error, run_cli
from hostile_support import Answer, Hostile, Upstream, deep_category, with_category

from ec2_metadata_core import EC2Metadata, MalformedResponseError
from ec2_metadata_core.bounds import (
    MAX_UNKNOWN_DEPTH,
    MAX_UNKNOWN_PATHS,
    MAX_USER_DATA,
)
from ec2_metadata_core.errors import IMDSHTTPError, printable
from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.snapshot import snapshot, user_data_json

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


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
        "ec2-metadata-core: error: left out: IMDS returned malformed category "
        "(nested deeper than {} levels) for meta-data/evil/".format(MAX_UNKNOWN_DEPTH)
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


def wide_category(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    """``meta-data/wide/``: 50 directories of 50 directories of ..."""
    if path == "/latest/meta-data/":
        return with_category("wide", "wide/", upstream)
    if path.startswith("/latest/meta-data/wide/"):
        if path.endswith("/"):
            return Answer(200, "\n".join("d{}/".format(i) for i in range(50)).encode())
        return Answer(200, b"x")
    return None


def test_a_category_too_wide_is_left_out_within_the_budget(sim: Simulator) -> None:
    expected = healthy(sim)
    with Hostile(sim, wide_category) as hostile:
        proc = dump(hostile.url)
        assert hostile.requests < 200 + MAX_UNKNOWN_PATHS + 100
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == expected
    (line,) = proc.stderr.splitlines()
    assert "more than {} paths".format(MAX_UNKNOWN_PATHS) in line and "meta-data/wide/" in line


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
