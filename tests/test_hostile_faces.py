"""The Ansible facts module and the Salt grains against a hostile endpoint: the bounds reach them.

Both faces call the library's snapshot, so the bounds of
``ec2_metadata_core.bounds`` hold there as in ``dump`` (``test_hostile.py``):
a category with no end costs them a bounded number of requests and leaves
the known values whole; what cannot be read is one line; nothing hangs. Run
in this process, as ``test_faults.py`` runs them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from fault_support import ansible_facts_module, ansible_gather, grains_opts
from hostile_support import WORST, Hostile

from ec2_metadata_core.bounds import MAX_UNKNOWN_DEPTH, MAX_UNKNOWN_PATHS
from ec2_metadata_core.simulator import Simulator

FACES = ("ansible", "grains")
OPTIONS = {"timeout": 0.5, "attempts": 1}
# What each case gives: the healthy facts (a category left out) or one line saying ...
EXPECTED: Dict[str, Optional[str]] = {
    "deep tree": None,
    "wide tree": None,
    "100,000 tags": "a listing of 100000 entries, more than 10000",
    "10 MB token": "Content-Length 10485760 (body larger than 1024 KiB)",
    "stalls and a trickle": "IMDS",
}
LEFT_OUT = {
    "deep tree": "a category nested deeper than {} levels".format(MAX_UNKNOWN_DEPTH),
    "wide tree": "past {} paths".format(MAX_UNKNOWN_PATHS),
}


@pytest.fixture(scope="module")
def facts_module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return ansible_facts_module(tmp_path_factory.mktemp("collection"))


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def grains(url: str, cachedir: Path) -> Tuple[Optional[Dict[str, Any]], List[str]]:
    """The ec2 grain of one refresh, and the warnings it logged."""
    from saltext.imds_ec2 import ec2 as grains_impl

    records: List[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logging.getLogger().addHandler(handler)
    grains_impl.forget_clients()
    try:
        got = grains_impl.grains(grains_opts(url, cachedir, OPTIONS))
    finally:
        grains_impl.forget_clients()
        logging.getLogger().removeHandler(handler)
    assert all(record.exc_info is None for record in records)  # no traceback
    return (got or {}).get("ec2"), [record.getMessage() for record in records]


def gather(face: str, url: str, facts_module: Any, tmp_path: Path) -> Tuple[Any, List[str]]:
    if face == "ansible":
        outcome = ansible_gather(facts_module, url, OPTIONS)
        return outcome.value, [] if outcome.error is None else [outcome.error]
    return grains(url, tmp_path / "cache")


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_hostile_endpoint_costs_a_face_bounded_time_and_one_line(
    sim: Simulator, facts_module: Any, tmp_path: Path, face: str, case: str
) -> None:
    healthy, _ = gather(face, sim.url, facts_module, tmp_path)
    rule, _ = WORST[case]
    with Hostile(sim, rule) as hostile:
        started = time.monotonic()
        value, said = gather(face, hostile.url, facts_module, tmp_path)
        took = time.monotonic() - started
        assert hostile.requests < 200 + MAX_UNKNOWN_PATHS
    assert took < 30, took  # the old core: minutes, or memory exhausted
    expected = EXPECTED[case]
    if expected is None:
        assert value == healthy  # every known value, the category left out
        if face == "grains":  # Salt logs; the library said it as a warning
            assert len(said) == 1 and LEFT_OUT[case] in said[0], said
        return
    assert value is None
    assert len(said) == 1 and "\n" not in said[0] and expected in said[0], said
