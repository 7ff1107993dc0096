"""Refuse, inside the process, any connection that would leave loopback.

The benchmarks already run in a network namespace that has only loopback;
this second layer matters for the peers, whose source names the real IMDS
address (169.254.169.254) and which the harnesses re-point at the simulator:
should a URL slip through, the connection fails loudly instead of leaving.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any


class OffLoopback(OSError):
    """A connection to an address other than loopback was attempted."""


def _check(address: Any) -> None:
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        host = address[0].split("%")[0]
        try:
            local = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = False
        if not local:
            raise OffLoopback("benchmark guard: refused connection to {}".format(host))


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(address)
    _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(address)
    return _connect_ex(self, address)


def install() -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
