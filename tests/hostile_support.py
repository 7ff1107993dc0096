"""An endpoint that is not IMDS: a hostile proxy in front of the simulator.

``Hostile(sim, rule)`` listens on 127.0.0.1. Each request goes to
``rule(method, path, upstream)``, which answers it (an ``Answer``: any
status, headers, body, sent as slowly as it likes) or returns ``None`` to
pass it to the simulator as it came. ``upstream()`` is the simulator's own
answer to the same request, for rules that change what IMDS says (add a
category to ``meta-data/``, say). Trees with no end are rules, not data:
``deep_category`` lists one more directory at every level.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from ec2_metadata_core.simulator import Simulator


class Answer(NamedTuple):
    status: int = 200
    body: bytes = b""
    headers: Tuple[Tuple[str, str], ...] = ()
    # Seconds before the head, and between pieces of the body (a trickle).
    stall: float = 0.0
    drip: float = 0.0
    piece: int = 1
    # Content-Length to announce (default: the body's); None with chunked.
    length: Optional[int] = -1


Upstream = Callable[[], Tuple[int, Dict[str, str], bytes]]
Rule = Callable[[str, str, Upstream], Optional[Answer]]


def _read_request(conn: socket.socket) -> Optional[bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


def _exchange(address: Tuple[str, int], request: bytes) -> bytes:
    with socket.create_connection(address, timeout=30) as up:
        up.sendall(request)
        chunks: List[bytes] = []
        while True:
            chunk = up.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _parse(raw: bytes) -> Tuple[int, Dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers, body


class Hostile:
    """The proxy; a context manager. ``requests`` counts what reached it."""

    def __init__(self, sim: Simulator, rule: Rule) -> None:
        self.upstream = (sim.host, sim.port)
        self.rule = rule
        self.requests = 0
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(128)
        self.url = "http://127.0.0.1:{}".format(self._server.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Hostile:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = _read_request(conn)
                if request is None:
                    return
                self.requests += 1
                method, path = request.decode("latin-1").split(" ", 2)[:2]

                def upstream() -> Tuple[int, Dict[str, str], bytes]:
                    return _parse(_exchange(self.upstream, request))

                answer = self.rule(method, path, upstream)
                if answer is None:
                    conn.sendall(_exchange(self.upstream, request))
                    return
                self._send(conn, answer)
            except OSError:
                return

    def _send(self, conn: socket.socket, answer: Answer) -> None:
        if answer.stall and self._stop.wait(answer.stall):
            return
        head = ["HTTP/1.1 {} X".format(answer.status), "Connection: close"]
        head += ["{}: {}".format(name, value) for name, value in answer.headers]
        length = len(answer.body) if answer.length == -1 else answer.length
        if length is not None:
            head.append("Content-Length: {}".format(length))
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if not answer.drip:
            conn.sendall(answer.body)
            return
        for start in range(0, len(answer.body), answer.piece):
            conn.sendall(answer.body[start : start + answer.piece])
            if self._stop.wait(answer.drip):
                return


def with_category(name: str, listing: str, upstream: Upstream) -> Answer:
    """The simulator's ``meta-data/`` listing with one more entry."""
    status, _, body = upstream()
    assert status == 200
    return Answer(200, body.rstrip(b"\n") + b"\n" + listing.encode() + b"\n")


def deep_category(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    """``meta-data/evil/a/a/a/...``: one more directory at every level, for ever."""
    if path == "/latest/meta-data/":
        return with_category("evil", "evil/", upstream)
    if path.startswith("/latest/meta-data/evil/"):
        return Answer(200, b"a/\nleaf")
    return None


def timed(run: Callable[[], object]) -> float:
    started = time.monotonic()
    run()
    return time.monotonic() - started
