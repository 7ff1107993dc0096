"""Memory and time of ``dump`` against the worst cases of a hostile endpoint (issue 17).

Each case of ``tests/hostile_support.WORST`` (a tree with no end, one too
wide, megabytes of control characters, a gzip bomb, 100,000 tags, a 10 MB
token, stalls) is served by the hostile proxy in front of an in-process
simulator; ``dump`` runs as a child process and notes its own peak RSS
(VmHWM: ``wait4``'s figure would count this process's pages too). The
target: the largest under 100 MB. A section of ``make bench``;
``run.py --only hostile`` runs it alone.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any, Dict, Optional

import layout

sys.path.insert(0, str(layout.ROOT / "tests"))

from hostile_support import WORST, Hostile, measured_dump

from ec2_metadata_core.simulator import Simulator

TARGET_RSS_MB = 100.0
# Each case is one child; none should come near this.
CASE_TIMEOUT_S = 120.0


def measure_hostile() -> Dict[str, Any]:
    """Per case: peak RSS, wall time, exit status and the first line said; then the target."""
    cases: Dict[str, Any] = {}
    with Simulator() as sim, tempfile.TemporaryDirectory() as scratch:
        for name, (rule, extra) in WORST.items():
            with Hostile(sim, rule) as hostile:
                proc = measured_dump(
                    str(layout.PYTHON), hostile.url, extra, scratch, CASE_TIMEOUT_S
                )
                said = proc.stderr.splitlines()
                cases[name] = {
                    "maxrss_kb": proc.peak_kb,
                    "wall_s": proc.wall_s,
                    "returncode": proc.returncode,
                    "requests": hostile.requests,
                    "said": said[0] if said else "",
                    "traceback": "Traceback" in proc.stderr,
                    "stdout_bytes": len(proc.stdout),
                }
    worst = max(cases.values(), key=lambda case: case["maxrss_kb"])
    worst_mb = worst["maxrss_kb"] / 1024.0
    clean = all(not case["traceback"] and case["returncode"] in (0, 1) for case in cases.values())
    return {
        "cases": cases,
        "targets": [
            {
                "name": "max RSS of a dump against a hostile endpoint < {:g} MB".format(
                    TARGET_RSS_MB
                ),
                "ok": worst_mb < TARGET_RSS_MB,
                "shown": "{:.1f} MB (worst case: {})".format(
                    worst_mb, next(n for n, c in cases.items() if c is worst)
                ),
            },
            {
                "name": "every case one line and exit 0 or 1, no traceback",
                "ok": clean,
                "shown": "yes" if clean else "no",
            },
        ],
    }


def render(block: Optional[Dict[str, Any]]) -> str:
    if not block:
        return "hostile endpoint: not measured"
    if "error" in block:
        return "hostile endpoint: error: {}".format(block["error"])
    lines = ["hostile endpoint: dump against the worst cases (peak RSS, wall, exit, requests)"]
    for name, case in block["cases"].items():
        lines.append(
            "  {:<32} {:6.1f} MB {:6.2f} s  exit {}  {:>6} requests  {}".format(
                name,
                case["maxrss_kb"] / 1024.0,
                case["wall_s"],
                case["returncode"],
                case["requests"],
                case["said"][:90],
            )
        )
    for target in block["targets"]:
        verdict = "PASS" if target["ok"] else "FAIL"
        lines.append("  {} {}: {}".format(verdict, target["name"], target["shown"]))
    return "\n".join(lines)
