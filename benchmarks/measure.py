"""Measuring tools: the simulator process, child processes with their rusage, summaries."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence

import layout

# Listings whose entries only IMDS knows; any other listing a snapshot fetches
# is one whose answer the model already knows (a MAC's items, placement/, ...).
ENUMERATIONS = frozenset(
    "GET /latest/meta-data/" + path
    for path in (
        "",  # discovery of categories the model does not know
        "network/interfaces/macs/",
        "tags/instance/",
        "public-keys/",
        "block-device-mapping/",
        "iam/security-credentials/",
    )
)


class Sim:
    """benchmarks/simserver.py as a child process (see its docstring)."""

    def __init__(self, latency_ms: float = 0.0, *options: str) -> None:
        self._proc = subprocess.Popen(
            [
                str(layout.PYTHON),
                str(layout.HERE / "simserver.py"),
                "--latency",
                str(latency_ms),
                *options,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.close()
            raise RuntimeError("simulator did not start (first line {!r})".format(self.url))

    def ask(self, command: str) -> Dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        answer: Dict[str, Any] = json.loads(self._proc.stdout.readline())
        if answer.get("ok") is False:
            raise RuntimeError(answer.get("error"))
        return answer

    def reset(self) -> None:
        self.ask("reset")

    def stats(self) -> Dict[str, Any]:
        return self.ask("stats")

    def latency(self, ms: float) -> None:
        self.ask("latency {}".format(ms))

    def silent(self, on: bool) -> None:
        self.ask("silent {}".format(1 if on else 0))

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write("quit\n")
                self._proc.stdin.close()
                self._proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()


class Proc(NamedTuple):
    wall_s: float
    cpu_s: float  # user + system, the process and the children it waited for
    maxrss_kb: int  # peak resident set of the process or its largest waited-for child
    returncode: int
    stdout: str
    stderr: str


def run_process(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = 120.0
) -> Proc:
    """Run ``argv`` to its end; wall time from spawn to reaping, rusage from wait4."""
    return finish_process(start_process(argv, env, cwd), timeout)


# Kernel counters of this network namespace (/proc/net/netstat, TcpExt):
# SYNs a full listen queue dropped, and SYNs the kernel had to send again.
TCP_COUNTERS = ("ListenOverflows", "ListenDrops", "TCPSynRetrans")


def tcp_counters() -> Dict[str, int]:
    """The namespace's TcpExt counters named in ``TCP_COUNTERS`` (empty if unreadable)."""
    try:
        lines = Path("/proc/net/netstat").read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return {name: int(table.get(name, 0)) for name in TCP_COUNTERS}
    return {}


def start_process(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Any:
    """A child whose stdout and stderr go to temporary files, for ``finish_process``."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish_process
    err = tempfile.TemporaryFile()  # noqa: SIM115
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(env), cwd=cwd
    )
    return proc, out, err, started


def finish_process(handle: Any, timeout: float = 120.0) -> Proc:
    """Wait for a child of ``start_process``: wall time from spawn to reaping, rusage."""
    proc, out, err, started = handle
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    with out, err:
        out.seek(0)
        err.seek(0)
        return Proc(
            wall,
            usage.ru_utime + usage.ru_stime,
            int(usage.ru_maxrss),
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def request_figures(stats: Mapping[str, Any], per: int = 1) -> Dict[str, Any]:
    """What the simulator saw, per gather when ``per`` gathers ran."""
    by_path: Dict[str, int] = stats["by_path"]
    fetched_more = sorted(p for p, n in by_path.items() if n > per)
    listings = sorted(p for p in by_path if p.endswith("/") and p.startswith("GET "))
    by_status: Dict[str, int] = stats.get("by_status", {})
    return {
        "requests": stats["requests"] / per,
        "token_requests": stats["token_requests"] / per,
        "connections": stats["connections"] / per,
        # How the service pushed back (a scenario's doing; 0 from the default).
        "over_capacity": stats.get("over_capacity", 0) / per,
        "throttled": stats.get("throttled", 0) / per,
        "unanswered": (stats["requests"] - sum(by_status.values())) / per,
        "statuses_429_5xx": sum(
            n for code, n in by_status.items() if code == "429" or code.startswith("5")
        )
        / per,
        "paths": len(by_path),
        "fetched_more_than_once": fetched_more,
        "listings": listings,
        "needless_listings": [p for p in listings if p not in ENUMERATIONS],
        "server_cpu_s": stats["server_cpu_time"] / per,
        # The simulator process as a whole (parsing, threads, latency timers):
        # it shares the two cores with the client, so it is part of every figure.
        "simulator_cpu_s": stats["process_cpu_time"] / per,
    }


def summary(values: Sequence[float]) -> Dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def child_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment of every measured process: no AWS metadata settings leak in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_EC2_METADATA", "AWS_METADATA_SERVICE", "ANSIBLE_", "PYTHON"))
    }
    env["AWS_CONFIG_FILE"] = os.devnull
    env.update(extra or {})
    return env


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is loopback."""
    import socket

    return all(name == "lo" for _, name in socket.if_nameindex())


def machine() -> Dict[str, Any]:
    """What the figures were measured on."""
    import platform

    info: Dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "cores": os.cpu_count(),
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        models = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        ]
        info["cpu"] = models[0] if models else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    try:
        meminfo = Path("/proc/meminfo").read_text(encoding="utf-8").split()
        info["memory_gib"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, ValueError):
        info["memory_gib"] = None
    try:
        release = dict(
            line.split("=", 1)
            for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines()
            if "=" in line
        )
        info["os"] = release.get("PRETTY_NAME", "").strip('"')
    except OSError:
        info["os"] = platform.system()
    return info


def git_revision() -> Dict[str, Any]:
    """The commit measured, and whether the tree had changes on top (read-only git calls)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=layout.ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    changed: List[str] = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": len(changed)}


SOURCE_DIRS = ("ec2_metadata_core", "salt_grains", "ansible_collection/plugins")


def source_digest() -> str:
    """A digest of the measured code: if it differs at the end, the code changed mid-run."""
    import hashlib

    digest = hashlib.sha256()
    for top in SOURCE_DIRS:
        for path in sorted((layout.ROOT / top).rglob("*.py")):
            digest.update(str(path.relative_to(layout.ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
