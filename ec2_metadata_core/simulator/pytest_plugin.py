"""pytest fixtures that point code under test at a local IMDS simulator.

Opt-in, so installing the library changes no other project's test runs: load
it with ``-p ec2_metadata_core.simulator.pytest_plugin`` or
``pytest_plugins = ["ec2_metadata_core.simulator.pytest_plugin"]`` in a
top-level ``conftest.py``. It imports the server only inside fixtures.

* ``imds_simulator``: a running ``Simulator`` with ``AWS_EC2_METADATA_SERVICE_ENDPOINT``
  set to it and ``AWS_EC2_METADATA_DISABLED`` removed; knobs can be given with
  ``@pytest.mark.imds_simulator(latency=0.1, tags_enabled=False, ...)``.
* ``imds_simulator_factory``: ``make(**kwargs)`` for extra simulators (env untouched).

The instance comes from ``--imds-instance FILE``, else the ``imds_instance``
ini option (relative to the ini file), else the bundled default instance.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional

import pytest

if TYPE_CHECKING:
    from .server import Simulator

_ENDPOINT_VAR = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
_DISABLED_VAR = "AWS_EC2_METADATA_DISABLED"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("imds-simulator", "EC2 instance metadata simulator")
    group.addoption(
        "--imds-instance",
        dest="imds_instance",
        default=None,
        metavar="FILE",
        help="instance data file for the imds_simulator fixtures (default: bundled instance)",
    )
    parser.addini(
        "imds_instance",
        "instance data file for the imds_simulator fixtures, relative to the ini file",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "imds_simulator(**knobs): Simulator keyword arguments for the imds_simulator fixture",
    )


def _instance_file(config: pytest.Config) -> Optional[str]:
    option = config.getoption("imds_instance", default=None)
    if option:
        base = Path(str(config.invocation_params.dir))
        return os.path.join(base, str(option))
    ini = str(config.getini("imds_instance") or "")
    if not ini:
        return None
    inipath = getattr(config, "inipath", None)
    base = Path(str(inipath)).parent if inipath else Path(str(config.rootpath))
    return os.path.join(base, ini)


def _start(kwargs: Any) -> Simulator:
    from .server import Simulator

    try:
        sim = Simulator(**kwargs)
        return sim.start()
    except (ValueError, OSError) as exc:
        message = f"imds simulator: {exc}"
    pytest.fail(message, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture
def imds_simulator(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Simulator]:
    """A running simulator that the AWS endpoint variable points at."""
    kwargs: Any = {"instance": _instance_file(request.config)}
    marker = request.node.get_closest_marker("imds_simulator")
    if marker is not None:
        kwargs.update(marker.kwargs)
    sim = _start(kwargs)
    try:
        monkeypatch.setenv(_ENDPOINT_VAR, sim.url)
        monkeypatch.delenv(_DISABLED_VAR, raising=False)
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def imds_simulator_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Simulator]]:
    """Make more simulators with Simulator kwargs; all are stopped at teardown."""
    made: List[Simulator] = []
    default_instance = _instance_file(request.config)

    def make(**kwargs: Any) -> Simulator:
        kwargs.setdefault("instance", default_instance)
        sim = _start(kwargs)
        made.append(sim)
        return sim

    try:
        yield make
    finally:
        for sim in reversed(made):
            sim.stop()
