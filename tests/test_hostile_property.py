"""Property: whatever a hostile endpoint serves, ``dump`` ends in bounded memory and time.

Hypothesis draws an endpoint (``Endpoint``): unknown categories of any depth
and width under names plain or not, bodies of any size and encoding (text,
control characters, binary, gzip), tokens too large or garbled, statuses
with any ``Retry-After``, answers that stall or trickle, lengths that lie.
``dump`` runs against it in a child process (``hostile_support.measured_dump``)
and must end with exit 0 (a document, nothing said) or 1 (one line each
problem, no traceback), within memory and time generous enough never to make
this a timed test: the figures themselves are ``make bench``'s
(``benchmarks/hostile_cost.py``, target 100 MB).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest
from hostile_support import Answer, Hostile, Rule, Upstream, measured_dump, with_category
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ec2_metadata_core.bounds import MAX_BODY, MAX_TOKEN
from ec2_metadata_core.simulator import Simulator

# Bounds a dump must stay within, whatever it is served. Generous: the bench
# measures the real figures (under 40 MB for most cases, under 100 MB for all).
PEAK_KB = 200 * 1024
# timeout 0.3 s, one attempt: a pass's default deadline is 4 x 1 x 1.3 = 5.2 s.
ARGS = ("--timeout", "0.3", "--attempts", "1")
WALL_S = 60.0

KNOWN = (
    "meta-data/ami-id",
    "meta-data/instance-id",
    "meta-data/tags/instance/",
    "meta-data/network/interfaces/macs/",
    "meta-data/block-device-mapping/",
    "meta-data/iam/security-credentials/",
    "meta-data/public-keys/",
    "dynamic/instance-identity/document",
    "user-data",
)


def _body(kind: str, size: int) -> bytes:
    if kind == "text":
        return (b"value-" * (size // 6 + 1))[:size]
    if kind == "controls":
        return (b"\x1b]0;T\x07\x00\x85\r\n" * (size // 10 + 1))[:size]
    if kind == "binary":
        return bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    if kind == "names":  # a listing: plain names and others
        names = [b"ok", b"..", b"a b", b"x/y", b"%2e", b"d/", b"\x1b[2J"]
        return b"\n".join(names[i % len(names)] for i in range(max(1, size // 4)))
    return gzip.compress(b"\0" * size)  # "gzip": inflates to size


BODIES = st.builds(
    _body,
    st.sampled_from(["text", "controls", "binary", "names", "gzip"]),
    st.sampled_from([0, 7, 300, 70_000, MAX_BODY - 1, MAX_BODY + 1, 3 * MAX_BODY]),
)


class Category(NamedTuple):
    name: str
    depth: int
    width: int
    leaf: bytes


class Endpoint(NamedTuple):
    """What the hostile endpoint serves beyond the simulator's answers."""

    token: Optional[Answer]
    known: Dict[str, Answer]
    categories: List[Category]


ANSWERS = st.builds(
    Answer,
    status=st.sampled_from([200, 200, 200, 404, 500, 503, 429]),
    body=BODIES,
    headers=st.sampled_from(
        [(), (("Retry-After", "0"),), (("Retry-After", "3600"),), (("Retry-After", "junk"),)]
    ),
    stall=st.sampled_from([0.0, 0.0, 0.0, 0.2, 1.5]),
    drip=st.sampled_from([0.0, 0.0, 0.0, 0.1]),
    piece=st.sampled_from([1, 4096]),
    length=st.sampled_from([-1, -1, -1, None, 10**9]),
)
TOKENS = st.one_of(
    st.none(),
    st.builds(
        lambda status, body: Answer(status, body),  # builds(Answer) would draw every field
        status=st.sampled_from([200, 403, 500]),
        body=st.one_of(
            st.binary(max_size=64),
            st.sampled_from([b"A" * (MAX_TOKEN + 1), b"A" * (2 * MAX_BODY)]),
        ),
    ),
)
CATEGORIES = st.lists(
    st.builds(
        Category,
        name=st.sampled_from(["extra", "evil", "..", "a b", "\x1b[2J", "%2f"]),
        depth=st.integers(1, 40),
        width=st.integers(1, 80),
        leaf=BODIES,
    ),
    max_size=3,
)
ENDPOINTS = st.builds(
    Endpoint,
    token=TOKENS,
    known=st.dictionaries(st.sampled_from(KNOWN), ANSWERS, max_size=3),
    categories=CATEGORIES,
)


def serving(endpoint: Endpoint) -> Rule:
    def rule(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
        if path == "/latest/api/token":
            return endpoint.token
        item = path[len("/latest/") :]
        answer = endpoint.known.get(item)
        if answer is not None:
            return answer
        if item == "meta-data/" and endpoint.categories:
            listing = "\n".join(category.name + "/" for category in endpoint.categories)
            return with_category("", listing, upstream)
        for category in endpoint.categories:
            base = "meta-data/{}/".format(category.name)
            if item.startswith(base):
                level = item[len(base) :].count("/")
                if not item.endswith("/"):
                    return Answer(200, category.leaf)
                below = ["d{}/".format(i) for i in range(category.width)]
                names = (below if level < category.depth else []) + ["leaf"]
                return Answer(200, "\n".join(names).encode())
        return None

    return rule


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    endpoint=ENDPOINTS,
    output=st.sampled_from([("--format", "json"), ("--format", "env"), ("--format", "yaml")]),
    user_data=st.booleans(),
)
def test_dump_ends_in_bounded_memory_and_time_whatever_it_is_served(
    sim: Simulator,
    tmp_path: Path,
    endpoint: Endpoint,
    output: Tuple[str, str],
    user_data: bool,
) -> None:
    args = ARGS + output + (("--include-user-data",) if user_data else ())
    with Hostile(sim, serving(endpoint)) as hostile:
        done = measured_dump(sys.executable, hostile.url, args, str(tmp_path))
    assert done.peak_kb < PEAK_KB, done.peak_kb
    assert done.wall_s < WALL_S, done.wall_s
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), (done.returncode, done.stderr)
    said = done.stderr.splitlines()
    assert all(line.startswith("ec2-metadata-core: error: ") for line in said), said
    assert all(line.isprintable() for line in said), said  # escape sequences escaped
    if done.returncode == 0:
        assert said == [] and done.stdout
        if output[1] == "json":
            json.loads(done.stdout)
    elif not done.stdout:
        assert len(said) == 1, said  # a failure: one line, nothing else
    else:
        assert said and all(
            line.startswith("ec2-metadata-core: error: left out: ") for line in said
        )
