"""The targets (PASS/FAIL with figure and limit) and the printed table."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

GATHER_ROUND_TRIPS = 8
GATHER_SLACK_MS = 25.0
IMPORT_LIMIT_MS = 60.0
VS_EC2_METADATA = 0.5
VS_AMAZON_AWS = 1 / 20
OFF_EC2_LIMIT_S = 0.5
TARGET_LATENCY = "2"


def gather_limit_ms(latency_ms: float) -> float:
    """The gather's limit: 8 round trips of the added latency plus 25 ms."""
    return GATHER_ROUND_TRIPS * latency_ms + GATHER_SLACK_MS


def _median(block: Optional[Dict[str, Any]], key: str = "wall") -> Optional[float]:
    if not block:
        return None
    stats = block.get(key) or {}
    value = stats.get("median")
    return float(value) if value is not None else None


def _target(
    name: str, figure: Optional[float], limit: float, unit: str, note: str = ""
) -> Dict[str, Any]:
    return {
        "name": name,
        "figure": figure,
        "limit": limit,
        "unit": unit,
        "pass": figure is not None and figure <= limit,
        "note": note,
    }


def targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for latency, block in sorted(results.get("gather", {}).items(), key=lambda kv: float(kv[0])):
        warm = (block.get("warm") or {}).get("median")
        cold = (block.get("cold") or {}).get("median")
        rows.append(
            _target(
                "gather alone at {} ms: median (8 x {} + 25 ms)".format(latency, latency),
                None if warm is None else warm * 1000,
                gather_limit_ms(float(latency)),
                "ms",
                "" if cold is None else "first gather of a process: {:.1f} ms".format(cold * 1000),
            )
        )
    procs = results.get("processes", {}).get(TARGET_LATENCY, {})
    ours = _median(procs.get("ours"))
    for key, ratio, label in (
        ("ec2_metadata", VS_EC2_METADATA, "1/2 of ec2-metadata 3.0.0"),
        ("amazon_aws", VS_AMAZON_AWS, "1/20 of amazon.aws ec2_metadata_facts"),
    ):
        peer = _median(procs.get(key))
        rows.append(
            _target(
                "dump process at {} ms <= {}".format(TARGET_LATENCY, label),
                None if ours is None else ours * 1000,
                (peer or 0.0) * ratio * 1000,
                "ms",
                "" if peer is None else "peer median {:.0f} ms".format(peer * 1000),
            )
        )
    imported = results.get("import", {}).get("added_s")
    rows.append(
        _target(
            "import ec2_metadata_core, added to a bare interpreter",
            None if imported is None else imported * 1000,
            IMPORT_LIMIT_MS,
            "ms",
        )
    )
    rows.extend(_request_targets(results))
    rows.extend(_salt_targets(results.get("salt", {})))
    rows.extend(_service_targets(results))
    return rows


def _service_targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    rows = []
    for name, block in results.get("service", {}).items():
        ours = block.get("ours", {})
        runs = len(ours.get("samples", []))
        rows.append(
            _target(
                "ours under {}: dumps not equal to a healthy run, of {}".format(name, runs),
                float(len(ours.get("errors", []))) if runs else None,
                0,
                "dumps",
                "; ".join(ours.get("errors", [])[:2]),
            )
        )
    for scenario, ratio, label in (
        ("listen-queue-5", VS_EC2_METADATA, "listen queue 5 <= 1/2 of ec2-metadata 3.0.0"),
        ("4-connections", 1.0, "at most 4 connections <= ec2-metadata 3.0.0"),
    ):
        block = results.get("service", {}).get(scenario, {})
        ours, peer = _median(block.get("ours")), _median(block.get("ec2_metadata"))
        if ours is not None:
            rows.append(
                _target(
                    "dump process at 2 ms, {}, same run".format(label),
                    ours * 1000,
                    (peer or 0.0) * ratio * 1000,
                    "ms",
                    ""
                    if not peer
                    else "ratio {:.2f}, peer median {:.0f} ms".format(ours / peer, peer * 1000),
                )
            )
    concurrent = results.get("concurrent", {})
    rounds = concurrent.get("rounds", [])
    if rounds:
        dumps = concurrent.get("dumps", 0)
        rows.append(
            _target(
                "{} dumps at once: failed, over {} rounds".format(dumps, len(rounds)),
                float(sum(dumps - r["ok"] for r in rounds)),
                0,
                "dumps",
            )
        )
        rows.append(
            _target(
                "{} dumps at once: connects that waited for the kernel's SYN resend".format(dumps),
                float(sum(r["kernel"].get("TCPSynRetrans", 0) for r in rounds)),
                0,
                "connects",
                "SYNs dropped by the full listen queue: {}".format(
                    sum(r["kernel"].get("ListenDrops", 0) for r in rounds)
                ),
            )
        )
    return rows


def _ours_request_blocks(results: Dict[str, Any]) -> Iterable[Dict[str, Any]]:
    """Every measured block of ours whose requests are a single gather each."""
    for block in results.get("gather", {}).values():
        yield from (w for w in block.get("workers", []) if "error" not in w)
    for procs in results.get("processes", {}).values():
        if procs.get("ours", {}).get("wall", {}).get("n"):
            yield procs["ours"]


def _request_targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    blocks = list(_ours_request_blocks(results))
    if not blocks:
        return []
    tokens = max(b["token_requests"] for b in blocks)
    twice = sorted({p for b in blocks for p in b["fetched_more_than_once"]})
    needless = sorted({p for b in blocks for p in b["needless_listings"]})
    rows = [
        _target("ours: token requests per gather", tokens, 1, "requests"),
        _target("ours: paths fetched twice in a gather", len(twice), 0, "paths", ", ".join(twice)),
        _target(
            "ours: listings fetched whose answer the model knows",
            len(needless),
            0,
            "listings",
            ", ".join(needless),
        ),
    ]
    faces = (
        ("ansible", "ansible_ours", "Ansible module: token requests per run"),
        ("salt", "on_ec2", "Salt grains: token requests per salt-call"),
    )
    for section, key, name in faces:
        block = results.get(section, {}).get(key)
        if block and block.get("wall", {}).get("n"):
            rows.append(_target(name, block["token_requests"], 1, "requests"))
    return rows


def _salt_targets(salt: Dict[str, Any]) -> List[Dict[str, Any]]:
    base = _median(salt.get("disabled"))
    rows = []
    for key, label in (("refused", "refused"), ("silent", "silent")):
        figure = _median(salt.get(key))
        rows.append(
            _target(
                "salt-call off EC2 ({}) minus enabled: false".format(label),
                None if figure is None or base is None else figure - base,
                OFF_EC2_LIMIT_S,
                "s",
            )
        )
    return rows


def errors(results: Dict[str, Any]) -> List[str]:
    """Runs whose answer was wrong: their figures were not counted."""
    found: List[str] = []
    sections = list(results.get("processes", {}).values())
    sections += [results.get("ansible", {}), results.get("salt", {})]
    for section in sections:
        for key, block in section.items():
            found.extend("{}: {}".format(key, e) for e in block.get("errors", []))
    for latency, block in results.get("gather", {}).items():
        found.extend(
            "gather at {} ms: {}".format(latency, w["error"])
            for w in block.get("workers", [])
            if "error" in w
        )
    return found


# -- the table -------------------------------------------------------------------------


def _ms(stats: Optional[Dict[str, Any]]) -> str:
    if not stats or not stats.get("n"):
        return "-"
    return "{:.1f} [{:.1f}-{:.1f}]".format(
        stats["median"] * 1000, stats["min"] * 1000, stats["max"] * 1000
    )


def _ms_median(stats: Optional[Dict[str, Any]]) -> str:
    if not stats or not stats.get("n"):
        return "-"
    return "{:.1f}".format(stats["median"] * 1000)


def _s(stats: Optional[Dict[str, Any]]) -> str:
    if not stats or not stats.get("n"):
        return "-"
    return "{:.2f} [{:.2f}-{:.2f}]".format(stats["median"], stats["min"], stats["max"])


def _mb(kb: Optional[int]) -> str:
    return "-" if kb is None else "{:.0f}".format(kb / 1024)


def _requests(block: Dict[str, Any]) -> str:
    if "requests" not in block:
        return "-"
    return "{:g}/{:g}/{:g}".format(block["requests"], block["token_requests"], block["connections"])


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    return lines


def _machine_line(results: Dict[str, Any]) -> str:
    m = results.get("machine", {})
    return "machine: {}, {} cores, {} GiB, Python {}, {} (Linux {})".format(
        m.get("cpu"),
        m.get("cores"),
        m.get("memory_gib"),
        m.get("python"),
        m.get("os"),
        m.get("kernel"),
    )


def render(results: Dict[str, Any]) -> str:
    out: List[str] = []
    out.append(_machine_line(results))
    before, after = results.get("load_before"), results.get("load_after")
    if before and after:
        out.append(
            "load average (1 min) before/after: {:.2f} / {:.2f}{}".format(
                before[0],
                after[0],
                "  (other work on the machine: figures are pessimistic)" if before[0] > 0.7 else "",
            )
        )
    rev = results.get("revision", {})
    out.append(
        "revision: {} (+{} changed files)   runtime: {:.0f} s{}".format(
            str(rev.get("commit", ""))[:12],
            rev.get("uncommitted_changes", 0),
            results.get("elapsed_s", 0.0),
            "   QUICK RUN (few repetitions)" if results.get("quick") else "",
        )
    )
    setup = results.get("setup", {})
    out.append(
        "peers: ec2-metadata {}, amazon.aws {} (from ansible {}); simulator in its own process, "
        "default instance".format(
            setup.get("pins", {}).get("ec2-metadata"),
            setup.get("amazon_aws_version"),
            setup.get("pins", {}).get("ansible"),
        )
    )
    out.append("")
    out.extend(_gather_section(results))
    out.append("")
    out.extend(_process_section(results))
    out.append("")
    out.extend(_service_section(results))
    out.append("")
    out.extend(_e2e_section(results))
    out.append("")
    out.extend(_import_section(results))
    out.append("")
    out.append("Targets")
    for row in results.get("targets", []):
        figure = "-" if row["figure"] is None else "{:.3g}".format(row["figure"])
        out.append(
            "  {}  {}: {} {} (limit {:.3g}){}".format(
                "PASS" if row["pass"] else "FAIL",
                row["name"],
                figure,
                row["unit"],
                row["limit"],
                "  [{}]".format(row["note"]) if row["note"] else "",
            )
        )
    if results.get("sources_before") != results.get("sources_after"):
        out.append("")
        out.append(
            "WARNING: the measured code changed during the run "
            "(ec2_metadata_core, salt_grains or the collection): figures mix two versions"
        )
    problems = errors(results)
    if problems:
        out.append("")
        out.append("ERRORS (runs whose answer was wrong; not counted):")
        out.extend("  " + p for p in problems)
    if results.get("skipped"):
        out.append("time budget ran out; cut short: " + ", ".join(results["skipped"]))
    if "error" in setup.get("ours_collection", {}):
        out.append("our collection was not measured: " + setup["ours_collection"]["error"])
    return "\n".join(out)


def _gather_section(results: Dict[str, Any]) -> List[str]:
    rows = []
    for latency, block in sorted(results.get("gather", {}).items(), key=lambda kv: float(kv[0])):
        workers = [w for w in block.get("workers", []) if "error" not in w]
        first = workers[0] if workers else {}
        rows.append(
            [
                "{} ms".format(latency),
                _ms(block.get("warm")),
                _ms(block.get("cold")),
                "{:.0f}".format(gather_limit_ms(float(latency))),
                _ms_median(block.get("client_cpu")),
                _requests(first),
                "-" if not first else "{:.1f}".format(first["simulator_cpu_s"] * 1000),
            ]
        )
    header = [
        "latency",
        "gather ms median [min-max]",
        "first gather in process",
        "limit",
        "client cpu ms",
        "req/tok/conn",
        "simulator cpu ms",
    ]
    title = (
        "Gather alone: snapshot(EC2Metadata(endpoint=url)) in process, after import "
        "(Connection: close)"
    )
    return [title, *_table(header, rows)]


def _process_section(results: Dict[str, Any]) -> List[str]:
    rows = []
    walls: Dict[str, Dict[str, float]] = {}
    for latency, procs in sorted(results.get("processes", {}).items(), key=lambda kv: float(kv[0])):
        for key, block in procs.items():
            median = _median(block)
            if median is not None:
                walls.setdefault(key, {})[latency] = median
            rows.append(
                [
                    "{} ms".format(latency),
                    block["label"],
                    _ms(block.get("wall")),
                    _ms(block.get("cpu")),
                    _mb(block.get("maxrss_kb")),
                    _requests(block),
                ]
            )
    header = [
        "latency",
        "contender",
        "wall ms median [min-max]",
        "cpu ms",
        "peak MB",
        "req/tok/conn",
    ]
    title = "Whole process: one full gather, spawn to exit (simulator default: Connection: close)"
    lines = [title, *_table(header, rows)]
    slopes = []
    for key, by_latency in walls.items():
        if "0" in by_latency and "10" in by_latency:
            slopes.append("{} {:.0f}".format(key, (by_latency["10"] - by_latency["0"]) / 0.010))
    if slopes:
        lines.append(
            "round trips in series, (wall at 10 ms - wall at 0 ms) / 10 ms: " + ", ".join(slopes)
        )
    return lines


def _pushed(block: Dict[str, Any]) -> str:
    pushed = block.get("pushed_back") or {}
    runs = len([s for s in block.get("samples", []) if "error" not in s]) or 1
    parts = [
        "{} {:.0f}".format(label, pushed[key] / runs)
        for key, label in (
            ("over_capacity", "cut"),
            ("throttled", "throttled"),
            ("statuses_429_5xx", "429/5xx"),
            ("unanswered", "unanswered"),
        )
        if pushed.get(key)
    ]
    return ", ".join(parts) or "-"


def _service_section(results: Dict[str, Any]) -> List[str]:
    lines: List[str] = []
    rows = []
    for name, block in results.get("service", {}).items():
        for key in ("ours", "ec2_metadata"):
            part = block.get(key, {})
            runs = len(part.get("samples", []))
            if not runs:
                continue
            rows.append(
                [
                    name,
                    part["label"],
                    "{}/{}".format(runs - len(part.get("errors", [])), runs),
                    _ms(part.get("wall")),
                    _requests(part),
                    _pushed(part),
                ]
            )
    if rows:
        header = ["service", "contender", "equal", "wall ms", "req/tok/conn", "pushed back/run"]
        title = (
            "The service pushing back, 2 ms, Connection: close: whole dumps in a row, "
            "each compared with a healthy run's"
        )
        lines += [title, *_table(header, rows), ""]
    kept = results.get("keep_alive", {})
    if kept:
        rows = [
            [block["label"], _ms(block.get("wall")), _ms(block.get("cpu")), _requests(block)]
            for block in kept.values()
        ]
        header = ["contender", "wall ms median [min-max]", "cpu ms", "req/tok/conn"]
        lines += ["A simulator that keeps connections alive (a knob), 2 ms", *_table(header, rows)]
        lines.append("")
    concurrent = results.get("concurrent", {})
    rows = [
        [
            str(index + 1),
            "{}/{}".format(r["ok"], concurrent.get("dumps")),
            _s(r.get("wall")),
            str(r["kernel"].get("ListenDrops", "-")),
            str(r["kernel"].get("TCPSynRetrans", "-")),
            str(r.get("peak_connections", "-")),
        ]
        for index, r in enumerate(concurrent.get("rounds", []))
    ]
    if rows:
        header = [
            "round",
            "ok",
            "wall s median [min-max]",
            "SYNs dropped (listen queue)",
            "SYN resends (kernel, 1 s)",
            "peak connections",
        ]
        lines += [
            "{} dump processes started at once, one simulator (listen queue 128), 2 ms".format(
                concurrent.get("dumps")
            ),
            *_table(header, rows),
        ]
    return lines


BASELINES = {"ansible": "ansible_ping", "salt": "disabled"}


def _e2e_section(results: Dict[str, Any]) -> List[str]:
    rows = []
    for section, baseline_key in BASELINES.items():
        blocks = results.get(section, {})
        baseline = _median(blocks.get(baseline_key))
        for key, block in blocks.items():
            median = _median(block)
            added = "baseline" if key == baseline_key else "-"
            if key != baseline_key and median is not None and baseline is not None:
                added = "{:+.2f}".format(median - baseline)
            rows.append(
                [
                    block["label"],
                    _s(block.get("wall")),
                    added,
                    _s(block.get("cpu")),
                    _mb(block.get("maxrss_kb")),
                    _requests(block),
                ]
            )
    header = [
        "end to end at 2 ms",
        "wall s median [min-max]",
        "vs baseline",
        "cpu s",
        "peak MB",
        "req/tok/conn",
    ]
    return ["Ansible and Salt, whole commands", *_table(header, rows)]


def _import_section(results: Dict[str, Any]) -> List[str]:
    block = results.get("import", {})
    if "added_s" not in block:
        return ["import: not measured"]
    lines = [
        "Import: python -c 'import ec2_metadata_core' {} ms, bare python {} ms: added {:.1f} ms "
        "(import ec2_metadata_core.snapshot adds {:.1f} ms)".format(
            _ms(block.get("core")),
            _ms(block.get("bare")),
            block["added_s"] * 1000,
            block["snapshot_added_s"] * 1000,
        )
    ]
    top = block.get("breakdown", {}).get("top_self_s", [])[:6]
    if top:
        lines.append(
            "  largest self times (-X importtime, one run): "
            + ", ".join("{} {:.1f}".format(name, s * 1000) for name, s in top)
        )
    return lines
