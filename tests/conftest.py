"""Suite-wide safety: no test may reach a real IMDS or anything off this machine.

Two layers: ``make test`` runs pytest in a network namespace that has only
loopback, and this guard fails any in-process connection to a non-loopback
address, naming it. The environment also points every client at a closed
loopback port unless a test (or the ``imds_simulator`` fixture) says otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

import pytest

# The simulator's fixtures: opt-in, as for any user of the package.
pytest_plugins = ["ec2_metadata_core.simulator.pytest_plugin"]

REAL_ENDPOINTS = ("169.254.169.254", "fd00:ec2::254")
# Port 9 (discard) on loopback: nothing listens, so a stray client fails fast.
DEAD_ENDPOINT = "http://127.0.0.1:9"

for _name in list(os.environ):
    if _name.startswith(("AWS_EC2_METADATA", "AWS_METADATA_SERVICE")):
        del os.environ[_name]
os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = DEAD_ENDPOINT
os.environ["AWS_CONFIG_FILE"] = os.devnull


class OffMachineConnection(AssertionError):
    """A test tried to open a connection that would leave this machine."""


def _is_local(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name we would have to resolve: not allowed


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _checked(address: Any) -> None:
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        host = address[0]
        if not _is_local(host):
            which = (
                "a real IMDS endpoint" if host in REAL_ENDPOINTS else "an address off this machine"
            )
            raise OffMachineConnection("test tried to connect to {} ({})".format(host, which))


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _checked(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _checked(address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _fresh_singleton() -> Any:
    """The ``ec2_metadata`` singleton must not carry state between tests."""
    from ec2_metadata_core import ec2_metadata

    ec2_metadata.clear_all()
    yield
    ec2_metadata.clear_all()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close Salt's deferred stderr handler before pytest closes stderr.

    Importing salt (the salt-factories plugin does, for every session) installs
    a handler that holds warnings and flushes them at exit, after pytest's
    summary, into a closed stream: noise after the last line of the run.
    """
    impl = sys.modules.get("salt._logging.impl")
    if impl is not None:
        impl.shutdown_temp_handler()
