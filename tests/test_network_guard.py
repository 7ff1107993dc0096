"""The suite's guard (tests/conftest.py) stops connections that would leave this machine.

The guard raises before ``connect`` runs, so these tests send no packet.
"""

from __future__ import annotations

import socket

import pytest

from ec2_metadata_core import EC2Metadata

# The guard's exception class, reached through the patched socket method:
# `from conftest import` would find tests/salt/conftest.py, also "conftest".
OffMachineConnection = socket.socket.connect.__globals__["OffMachineConnection"]


def test_guard_stops_the_ipv4_imds_address() -> None:
    with pytest.raises(OffMachineConnection, match=r"169\.254\.169\.254"):
        socket.create_connection(("169.254.169.254", 80), timeout=0.1)


def test_guard_stops_the_ipv6_imds_address() -> None:
    with pytest.raises(OffMachineConnection, match="fd00:ec2::254"):
        socket.create_connection(("fd00:ec2::254", 80), timeout=0.1)


def test_guard_stops_connect_ex_too() -> None:
    with socket.socket() as sock, pytest.raises(OffMachineConnection):
        sock.connect_ex(("169.254.169.254", 80))


def test_guard_stops_the_client_on_the_real_endpoint() -> None:
    # The explicit mode beats the dead loopback endpoint conftest sets, so the
    # client really aims at 169.254.169.254: the guard must fail the read.
    metadata = EC2Metadata(endpoint_mode="IPv4", attempts=1)
    with pytest.raises(OffMachineConnection, match="a real IMDS endpoint"):
        metadata.instance_id  # noqa: B018


def test_guard_lets_loopback_through() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            pass


def test_default_endpoint_in_tests_is_a_dead_loopback_port() -> None:
    assert EC2Metadata().client.settings.endpoint.startswith("http://127.0.0.1:")
