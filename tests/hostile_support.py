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

import gzip
import socket
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from ec2_metadata_core.bounds import MAX_BODY, MAX_PASS_BYTES, MAX_USER_DATA
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
    """The simulator's ``meta-data/`` listing with one more entry (alone if it has none)."""
    status, _, body = upstream()
    known = body.rstrip(b"\n") + b"\n" if status == 200 else b""
    return Answer(200, known + listing.encode() + b"\n")


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


def wide_category(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    """``meta-data/wide/``: 50 directories of 50 directories of 50 values, 3 levels deep."""
    if path == "/latest/meta-data/":
        return with_category("wide", "wide/", upstream)
    if path.startswith("/latest/meta-data/wide/"):
        if path.endswith("/"):
            level = path[len("/latest/meta-data/wide/") :].count("/")
            entry = "d{}/" if level < 2 else "v{}"
            return Answer(200, "\n".join(entry.format(i) for i in range(50)).encode())
        return Answer(200, b"x")
    return None


def escapes_to_the_caps(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    """Known values of control characters (six bytes each in JSON) up to the pass's cap,
    and user data inflating to its cap, of control characters too."""
    size = ESCAPED.get(path)
    if size is not None:
        return Answer(200, b"\x01" * size)
    return user_data_at_the_cap(method, path, upstream)


# Two values: one at the body cap, one filling the pass's cap but for 64 KiB
# (the rest of a gather reads some 20 KiB).
ESCAPED = {
    "/latest/meta-data/ami-id": MAX_BODY - 1,
    "/latest/meta-data/hostname": MAX_PASS_BYTES - MAX_BODY - 64 * 1024,
}


def user_data_bomb(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    """User data of under 1 MiB that inflates to 900 MiB."""
    if path == "/latest/user-data":
        return Answer(200, BOMB)
    return None


def user_data_at_the_cap(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    """Gzip'd user data that inflates to just under the cap, all control characters."""
    if path == "/latest/user-data":
        return Answer(200, gzip.compress(b"\x01" * MAX_USER_DATA))
    return None


def tags_by_the_100000(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    if path == "/latest/meta-data/tags/instance/":
        return Answer(200, "\n".join("t{}".format(i) for i in range(100_000)).encode())
    return None


def huge_token(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    if path == "/latest/api/token":
        return Answer(200, b"A" * (10 << 20))
    return None


def stalls(method: str, path: str, upstream: Upstream) -> Optional[Answer]:
    """Every read after the token stalls; one answers a byte at a time."""
    if path == "/latest/api/token":
        return None
    if path == "/latest/meta-data/instance-id":
        return Answer(200, b"i-" + b"0" * 400, drip=0.05)
    return Answer(200, b"x", stall=60)


# 900 gzip members of 1 MiB of zeros each: under 1 MiB that inflates to 900 MiB.
BOMB = gzip.compress(b"\0" * (1 << 20), compresslevel=9) * 900


# The worst cases of a hostile endpoint for ``dump`` (the bench's row, the
# property test's corners): name -> (rule, extra arguments).
WORST: Dict[str, Tuple[Rule, Tuple[str, ...]]] = {
    "deep tree": (deep_category, ()),
    "wide tree": (wide_category, ()),
    "control characters to the caps": (escapes_to_the_caps, ("--include-user-data",)),
    "the same, as YAML": (escapes_to_the_caps, ("--include-user-data", "--format", "yaml")),
    "gzip bomb in user data": (user_data_bomb, ("--include-user-data",)),
    "user data inflating to the cap": (user_data_at_the_cap, ("--include-user-data",)),
    "100,000 tags": (tags_by_the_100000, ()),
    "10 MB token": (huge_token, ()),
    "stalls and a trickle": (stalls, ("--timeout", "0.5", "--attempts", "1")),
}


# ``python -m ec2_metadata_core`` that notes its own peak RSS on the way out.
# VmHWM is the process's own since exec: ``wait4``'s ru_maxrss also counts
# the (v)forked parent's pages, a pytest run's or the bench's hundred MB.
_MEASURED = """\
import atexit, os, runpy, sys

def _peak():
    with open("/proc/self/status") as status, open(os.environ["HOSTILE_PEAK_FILE"], "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])

atexit.register(_peak)
sys.argv[0] = "ec2_metadata_core"
runpy.run_module("ec2_metadata_core", run_name="__main__", alter_sys=True)
"""


class Measured(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: str
    peak_kb: int  # VmHWM of the dump process
    wall_s: float


def measured_dump(
    python: str, url: str, args: Tuple[str, ...], directory: str, timeout: float = 120
) -> Measured:
    """``dump --endpoint URL ARGS`` in a child process: what it gave, its peak RSS, its time."""
    import os
    import subprocess

    peak_file = os.path.join(directory, "peak-{}".format(threading.get_ident()))
    env = {**os.environ, "HOSTILE_PEAK_FILE": peak_file}
    started = time.monotonic()
    done = subprocess.run(
        [python, "-c", _MEASURED, "dump", "--endpoint", url, *args],
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    wall = time.monotonic() - started
    with open(peak_file, encoding="ascii") as peak:
        peak_kb = int(peak.read())
    os.unlink(peak_file)
    return Measured(
        done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"), peak_kb, wall
    )
