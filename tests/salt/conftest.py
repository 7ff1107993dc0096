"""Fixtures for the Salt grains tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import pytest
from salt_grains_support import Minion, write_minion_config

from saltext.imds_ec2 import ec2 as grains_impl


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """The per-process IMDS clients must not leak from one test into another."""
    grains_impl.forget_clients()
    yield
    grains_impl.forget_clients()


@pytest.fixture
def minion(tmp_path: Path) -> Callable[..., Minion]:
    """``minion(ec2_metadata={...})``: a fresh minion config dir under tmp_path."""
    count = [0]

    def make(ec2_metadata: Optional[Dict[str, Any]] = None) -> Minion:
        count[0] += 1
        return write_minion_config(tmp_path / "m{}".format(count[0]), ec2_metadata)

    return make
