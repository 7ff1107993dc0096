"""`make bench`: ours against ec2-metadata 3.0.0 and amazon.aws, side by side.

Run through `make bench`: it runs setup_peers.py (downloads) first, then this
script inside a network namespace that has only loopback. This script refuses
to run anywhere else. See benchmarks/README.md for what is measured and how.

Options: --quick (few repetitions, for checking the harness), --budget S
(stop starting new measurements after S seconds), --no-save (print only),
--only hostile (just the hostile-endpoint row, hostile_cost.py; saves nothing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import socket
import statistics
import sys
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, TypeVar

import contenders
import hostile_cost
import layout
import measure
import report
import watch_cost

from ec2_metadata_core.simulator import SCENARIOS

T = TypeVar("T")

LATENCIES_MS = (0, 2, 10)
E2E_LATENCY_MS = 2
# The amazon.aws module takes seconds a run: fewer of its runs keep the total short.
SLOW_CONTENDER = "amazon_aws"


class Plan(NamedTuple):
    import_pairs: int
    gather_workers: int
    gathers_per_worker: int
    process_runs: Dict[int, int]
    slow_runs: Dict[int, int]
    ansible_runs: int
    salt_runs: int  # salt-call varies by tenths of a second: more runs to see a 0.2 s probe
    scenario_runs: int  # ours, whole dumps in a row under each pushing-back scenario
    scenario_peer_runs: int  # ec2-metadata 3.0.0 under the same, for context
    concurrent_rounds: int  # rounds of CONCURRENT_DUMPS dumps started at once


FULL = Plan(15, 5, 10, {0: 11, 2: 11, 10: 9}, {0: 3, 2: 5, 10: 3}, 5, 9, 20, 5, 3)
QUICK = Plan(3, 1, 3, {0: 2, 2: 2, 10: 1}, {0: 1, 2: 1, 10: 1}, 1, 1, 2, 1, 1)
# The real service's shape at a typical latency: scenarios, keep-alive, a crowd.
SERVICE_LATENCY_MS = 2
CONCURRENT_DUMPS = 20


class Budget:
    """Wall-clock budget: past it, sections record 'skipped' instead of starting runs."""

    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + seconds
        self.skipped: List[str] = []

    def allows(self, what: str) -> bool:
        if time.monotonic() < self.deadline:
            return True
        if what not in self.skipped:
            self.skipped.append(what)
        return False

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def progress(message: str) -> None:
    print("bench: " + message, file=sys.stderr, flush=True)


def _sample(
    sim: measure.Sim, contender: contenders.Contender, cwd: Any, timeout: float = 120.0
) -> Dict[str, Any]:
    """One measured run of one contender: figures, or the error that voids them."""
    sim.reset()
    proc = measure.run_process(contender.argv, contender.env, cwd, timeout)
    stats = sim.stats()
    error = contender.check(proc)
    if error is not None:
        return {"error": error}
    sample: Dict[str, Any] = {
        "wall_s": proc.wall_s,
        "cpu_s": proc.cpu_s,
        "maxrss_kb": proc.maxrss_kb,
    }
    sample.update(measure.request_figures(stats))
    return sample


# -- sections ------------------------------------------------------------------------


def measure_import(plan: Plan, budget: Budget) -> Dict[str, Any]:
    """`import ec2_metadata_core` minus a bare interpreter, interleaved runs."""
    python = str(layout.PYTHON)
    commands = {
        "bare": [python, "-c", "pass"],
        "core": [python, "-c", "import ec2_metadata_core"],
        "snapshot": [python, "-c", "import ec2_metadata_core.snapshot"],
    }
    env = measure.child_env()
    walls: Dict[str, List[float]] = {name: [] for name in commands}
    for _ in range(plan.import_pairs):
        if not budget.allows("import"):
            break
        for name, argv in commands.items():
            proc = measure.run_process(argv, env, layout.SCRATCH, 30)
            if proc.returncode == 0:
                walls[name].append(proc.wall_s)
    result: Dict[str, Any] = {name: measure.summary(values) for name, values in walls.items()}
    if walls["bare"] and walls["core"]:
        bare = statistics.median(walls["bare"])
        result["added_s"] = statistics.median(walls["core"]) - bare
        result["snapshot_added_s"] = statistics.median(walls["snapshot"]) - bare
    result["breakdown"] = _import_breakdown(env)
    return result


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def _import_breakdown(env: Dict[str, str]) -> Dict[str, Any]:
    """What `import ec2_metadata_core` loads that a bare interpreter does not, and its cost."""
    python = str(layout.PYTHON)
    probe = (
        "import sys; before = set(sys.modules); import ec2_metadata_core; "
        "added = sorted(set(sys.modules) - before); import json; print(json.dumps(added))"
    )
    added = measure.run_process([python, "-c", probe], env, layout.SCRATCH, 30)
    timed = measure.run_process(
        [python, "-X", "importtime", "-c", "import ec2_metadata_core"], env, layout.SCRATCH, 30
    )
    try:
        modules = json.loads(added.stdout)
    except ValueError:
        modules = []
    selves = []
    cumulative = None
    for match in _IMPORTTIME.finditer(timed.stderr):
        self_us, cumulative_us, _, name = match.groups()
        if name in modules:
            selves.append((int(self_us), name))
        if name == "ec2_metadata_core":
            cumulative = int(cumulative_us) / 1e6
    selves.sort(reverse=True)
    return {
        "modules_added": modules,
        "importtime_cumulative_s": cumulative,
        "top_self_s": [[name, us / 1e6] for us, name in selves[:12]],
    }


def measure_gather(sim: measure.Sim, plan: Plan, budget: Budget, url: str) -> Dict[str, Any]:
    """The gather alone, in a worker process after import (harness/ours_gather.py)."""
    argv = [
        str(layout.PYTHON),
        str(layout.HARNESS / "ours_gather.py"),
        url,
        str(plan.gathers_per_worker),
    ]
    env = measure.child_env()
    cold: List[float] = []
    warm: List[float] = []
    cpu: List[float] = []
    workers: List[Dict[str, Any]] = []
    for _ in range(plan.gather_workers):
        if not budget.allows("gather"):
            break
        sim.reset()
        proc = measure.run_process(argv, env, layout.SCRATCH, 120)
        stats = sim.stats()
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            workers.append({"error": (proc.stderr or proc.stdout).strip()[-300:]})
            continue
        if data.get("region") != contenders.REGION:
            workers.append({"error": "the gather did not find the region"})
            continue
        times = data["gathers_s"]
        cold.append(times[0])
        warm.extend(times[1:])
        cpu.extend(data["gathers_cpu_s"][1:])
        worker = {
            "import_s": data["import_s"],
            "gathers_s": times,
            "gathers_cpu_s": data["gathers_cpu_s"],
            "keys": data["keys"],
        }
        worker.update(measure.request_figures(stats, per=plan.gathers_per_worker))
        workers.append(worker)
    return {
        "cold": measure.summary(cold),
        "warm": measure.summary(warm),
        "all": measure.summary(cold + warm),
        "client_cpu": measure.summary(cpu),
        "workers": workers,
    }


def measure_processes(
    sim: measure.Sim, runs: int, slow_runs: int, budget: Budget, url: str
) -> Dict[str, Any]:
    """Whole processes, in turns so drift in the machine's load hits all alike.

    The fast contenders (ours, ec2-metadata: a fraction of a second each) take
    turns with each other first, so the pair whose ratio is a target runs under
    the same conditions; the amazon.aws module (seconds a run) comes after.
    """
    rows = contenders.process_contenders(url)
    fast = [c for c in rows if c.key != SLOW_CONTENDER]
    slow = [c for c in rows if c.key == SLOW_CONTENDER]
    samples: Dict[str, List[Dict[str, Any]]] = {c.key: [] for c in rows}
    rounds = [_rotated(fast, index) for index in range(runs)] + [slow] * slow_runs
    for contenders_in_round in rounds:
        for contender in contenders_in_round:
            if budget.allows("processes"):
                samples[contender.key].append(_sample(sim, contender, layout.SCRATCH))
    return {c.key: _rollup(c.label, samples[c.key]) for c in rows}


def _rotated(items: Sequence[T], index: int) -> List[T]:
    """``items`` starting at position ``index``: each one takes every place in turn."""
    shift = index % len(items) if items else 0
    return list(items[shift:]) + list(items[:shift])


def _rollup(label: str, samples: List[Dict[str, Any]]) -> Dict[str, Any]:
    good = [s for s in samples if "error" not in s]
    rolled: Dict[str, Any] = {
        "label": label,
        "wall": measure.summary([s["wall_s"] for s in good]),
        "cpu": measure.summary([s["cpu_s"] for s in good]),
        "maxrss_kb": max((s["maxrss_kb"] for s in good), default=None),
        "errors": [s["error"] for s in samples if "error" in s],
        "samples": samples,
    }
    if good:
        last = good[-1]
        for key in ("requests", "token_requests", "connections", "paths"):
            rolled[key] = max(s[key] for s in good)
        for key in ("fetched_more_than_once", "needless_listings", "listings"):
            rolled[key] = sorted({p for s in good for p in s[key]})
        rolled["server_cpu_s"] = last["server_cpu_s"]
        rolled["simulator_cpu_s"] = last["simulator_cpu_s"]
    # Listings are alike from run to run: kept once, above, not in every sample.
    rolled["samples"] = [{k: v for k, v in s.items() if k != "listings"} for s in samples]
    return rolled


def measure_ansible(
    sim: measure.Sim, plan: Plan, budget: Budget, url: str, ours_ready: bool
) -> Dict[str, Any]:
    rows = contenders.ansible_contenders(url, layout.SCRATCH, ours_ready)
    for contender in rows:  # untimed first run: ansible compiles and caches its plugins
        measure.run_process(contender.argv, contender.env, layout.SCRATCH, 180)
    samples: Dict[str, List[Dict[str, Any]]] = {c.key: [] for c in rows}
    for index in range(plan.ansible_runs):
        for contender in _rotated(rows, index):
            if budget.allows("ansible"):
                samples[contender.key].append(_sample(sim, contender, layout.SCRATCH, 180))
    return {c.key: _rollup(c.label, samples[c.key]) for c in rows}


def healthy_answers(url: str) -> Dict[str, Any]:
    """What ours and ec2-metadata give from the realistic default: the right answers."""
    answers: Dict[str, Any] = {}
    for contender in contenders.process_contenders(url)[:2]:
        proc = measure.run_process(contender.argv, contender.env, layout.SCRATCH, 120)
        answers[contender.key] = contenders.json_tail(proc.stdout)
    return answers


def _same_as(expected: Any, what: str) -> Any:
    def check(proc: measure.Proc) -> Optional[str]:
        got = contenders.json_tail(proc.stdout)
        if proc.returncode != 0 or got != expected:
            tail = (proc.stderr or proc.stdout).strip()[-300:]
            return "exit {}, {} differs from a healthy run: {}".format(proc.returncode, what, tail)
        return None

    return check


def _pair(url: str, healthy: Dict[str, Any]) -> List[contenders.Contender]:
    """Ours and ec2-metadata, each checked against its own answer from a healthy service."""
    ours, peer = contenders.process_contenders(url)[:2]
    return [
        ours._replace(check=_same_as(healthy.get("ours"), "the dump")),
        peer._replace(check=_same_as(healthy.get("ec2_metadata"), "what it read")),
    ]


def _pushed_back(samples: List[Dict[str, Any]]) -> Dict[str, Any]:
    keys = ("over_capacity", "throttled", "unanswered", "statuses_429_5xx")
    return {k: sum(s.get(k, 0) for s in samples if "error" not in s) for k in keys}


def measure_service(
    plan: Plan, budget: Budget, healthy: Dict[str, Any], names: Optional[Sequence[str]] = None
) -> Dict[str, Any]:
    """Whole dumps in a row under each way the service pushes back (simulator/scenarios.py).

    The simulator runs each scenario in a process of its own, at 2 ms; its
    state (a rate limit's bucket, a fault's count) carries over from dump to
    dump, as on an instance. Every dump must equal a healthy run's.
    """
    results: Dict[str, Any] = {}
    for name in SCENARIOS if names is None else names:
        if not budget.allows("service"):
            break
        progress("service pushing back: {}".format(name))
        sim = measure.Sim(SERVICE_LATENCY_MS, "--scenario", name)
        try:
            ours, peer = _pair(sim.url, healthy)
            samples: Dict[str, List[Dict[str, Any]]] = {"ours": [], "ec2_metadata": []}
            for index in range(plan.scenario_runs):
                turn = [ours, peer] if index < plan.scenario_peer_runs else [ours]
                for contender in _rotated(turn, index):
                    if budget.allows("service"):
                        samples[contender.key].append(_sample(sim, contender, layout.SCRATCH))
        finally:
            sim.close()
        results[name] = {
            key: dict(_rollup(label, samples[key]), pushed_back=_pushed_back(samples[key]))
            for key, label in (("ours", ours.label), ("ec2_metadata", peer.label))
        }
    return results


def measure_keep_alive(plan: Plan, budget: Budget, healthy: Dict[str, Any]) -> Dict[str, Any]:
    """Ours and ec2-metadata at 2 ms against a simulator that keeps connections alive."""
    sim = measure.Sim(SERVICE_LATENCY_MS, "--keep-alive")
    try:
        rows = _pair(sim.url, healthy)
        samples: Dict[str, List[Dict[str, Any]]] = {c.key: [] for c in rows}
        for index in range(plan.process_runs[SERVICE_LATENCY_MS]):
            for contender in _rotated(rows, index):
                if budget.allows("keep_alive"):
                    samples[contender.key].append(_sample(sim, contender, layout.SCRATCH))
    finally:
        sim.close()
    return {c.key: _rollup(c.label, samples[c.key]) for c in rows}


def measure_concurrent(
    sim: measure.Sim, plan: Plan, budget: Budget, url: str, healthy: Dict[str, Any]
) -> Dict[str, Any]:
    """CONCURRENT_DUMPS dump processes started at once against one simulator (listen queue 128).

    The namespace's kernel counters say how many SYNs a full listen queue
    dropped and how many the kernel had to send again (a connect that waited
    the 1 s resend); the slowest dump says whether anything stalled.
    """
    ours = _pair(url, healthy)[0]
    rounds = []
    for _ in range(plan.concurrent_rounds):
        if not budget.allows("concurrent"):
            break
        sim.reset()
        before = measure.tcp_counters()
        handles = [
            measure.start_process(ours.argv, ours.env, layout.SCRATCH)
            for _ in range(CONCURRENT_DUMPS)
        ]
        procs = [measure.finish_process(handle, 120) for handle in handles]
        after = measure.tcp_counters()
        stats = sim.stats()
        errors = [e for e in (ours.check(p) for p in procs) if e is not None]
        rounds.append(
            {
                "ok": len(procs) - len(errors),
                "errors": errors,
                "wall": measure.summary([p.wall_s for p in procs]),
                "kernel": {k: after.get(k, 0) - before.get(k, 0) for k in after},
                "requests": stats["requests"],
                "connections": stats["connections"],
                "peak_connections": stats["peak_connections"],
            }
        )
    return {"dumps": CONCURRENT_DUMPS, "rounds": rounds}


class _SaltVariant(NamedTuple):
    key: str
    label: str
    settings: Dict[str, Any]
    expect: str
    silent: bool
    fresh: bool  # remove the "not on EC2" memo before each run


def measure_salt(sim: measure.Sim, plan: Plan, budget: Budget, url: str) -> Dict[str, Any]:
    closed = _closed_port()
    label = "salt-call grains.get, "
    variants = [
        _SaltVariant("disabled", label + "enabled: false", {"enabled": False}, "", False, False),
        _SaltVariant(
            "on_ec2", label + "on EC2", {"endpoint": url}, contenders.REGION, False, False
        ),
        _SaltVariant("refused", label + "off EC2, refused", {"endpoint": closed}, "", False, True),
        _SaltVariant("silent", label + "off EC2, silent", {"endpoint": url}, "", True, True),
        _SaltVariant(
            "refused_remembered",
            label + "off EC2, refused, remembered",
            {"endpoint": closed},
            "",
            False,
            False,
        ),
    ]
    minions = {v.key: contenders.minion(layout.SCRATCH, v.key, v.settings) for v in variants}
    calls = {v.key: contenders.salt_call(minions[v.key], v.expect) for v in variants}
    samples: Dict[str, List[Dict[str, Any]]] = {v.key: [] for v in variants}
    for variant in variants:  # untimed first run: salt builds its caches, the memo is written
        sim.silent(variant.silent)
        measure.run_process(calls[variant.key].argv, calls[variant.key].env, layout.SCRATCH, 180)
    for index in range(plan.salt_runs):
        for variant in _rotated(variants, index):
            if not budget.allows("salt"):
                break
            memo = minions[variant.key].negative_cache
            if variant.fresh and memo is not None and memo.exists():
                memo.unlink()
            sim.silent(variant.silent)
            samples[variant.key].append(_sample(sim, calls[variant.key], layout.SCRATCH, 180))
    sim.silent(False)
    return {v.key: _rollup(v.label, samples[v.key]) for v in variants}


def _closed_port() -> str:
    """A loopback URL where nothing listens (inside the namespace nothing else binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return "http://127.0.0.1:{}".format(port)


# -- driver ----------------------------------------------------------------------------


def warm_up(sim: measure.Sim, url: str) -> None:
    """One untimed run of everything: bytecode caches and the page cache start warm for all."""
    for contender in contenders.process_contenders(url):
        measure.run_process(contender.argv, contender.env, layout.SCRATCH, 120)
    argv = [str(layout.PYTHON), str(layout.HARNESS / "ours_gather.py"), url, "1"]
    measure.run_process(argv, measure.child_env(), layout.SCRATCH, 120)


def load_setup() -> Optional[Dict[str, Any]]:
    try:
        record: Dict[str, Any] = json.loads(layout.SETUP_RECORD.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (layout.PEERS_PYTHON.exists() and layout.AMAZON_MODULE.exists()):
        return None
    return record


def save(results: Dict[str, Any]) -> str:
    """The raw run under results/ (ignored by git); the table in SUMMARY.md (kept)."""
    layout.RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = results["started"].replace(":", "-").split(".")[0]
    path = layout.RESULTS / "{}.json".format(stamp)
    text = json.dumps(results, indent=1, sort_keys=True) + "\n"
    path.write_text(text, encoding="utf-8")
    latest = layout.RESULTS / "latest.json"  # a link, not a second copy of the run
    latest.unlink(missing_ok=True)
    latest.symlink_to(path.name)
    table = "\n\n".join(
        (
            report.render(results),
            watch_cost.render(results.get("watch")),
            hostile_cost.render(results.get("hostile")),
        )
    )
    summary = "# Last full `make bench` run ({})\n\n```\n{}\n```\n".format(
        results["started"], table
    )
    layout.SUMMARY.write_text(summary, encoding="utf-8")
    return str(path.relative_to(layout.ROOT))


def run(plan: Plan, budget: Budget, setup: Dict[str, Any]) -> Dict[str, Any]:
    ours_ready = "error" not in setup.get("ours_collection", {"error": "not built"})
    results: Dict[str, Any] = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": measure.machine(),
        "revision": measure.git_revision(),
        "setup": setup,
        "plan": plan._asdict(),
        "load_before": os.getloadavg(),
        "sources_before": measure.source_digest(),
        "gather": {},
        "processes": {},
    }
    sim = measure.Sim()
    try:
        url = sim.url
        progress("simulator at {} (own process); warming up".format(url))
        warm_up(sim, url)
        progress("import time")
        results["import"] = measure_import(plan, budget)
        for latency in LATENCIES_MS:
            progress("gather alone at {} ms".format(latency))
            sim.latency(latency)
            results["gather"][str(latency)] = measure_gather(sim, plan, budget, url)
        for latency in LATENCIES_MS:
            progress("whole processes at {} ms".format(latency))
            sim.latency(latency)
            results["processes"][str(latency)] = measure_processes(
                sim, plan.process_runs[latency], plan.slow_runs[latency], budget, url
            )
        sim.latency(SERVICE_LATENCY_MS)
        healthy = healthy_answers(url)
        progress("{} dumps at once".format(CONCURRENT_DUMPS))
        results["concurrent"] = measure_concurrent(sim, plan, budget, url, healthy)
        progress("whole processes at {} ms, connections kept alive".format(SERVICE_LATENCY_MS))
        results["keep_alive"] = measure_keep_alive(plan, budget, healthy)
        results["service"] = measure_service(plan, budget, healthy)
        sim.latency(E2E_LATENCY_MS)
        progress("ansible end to end at {} ms".format(E2E_LATENCY_MS))
        results["ansible"] = measure_ansible(sim, plan, budget, url, ours_ready)
        progress("salt end to end at {} ms".format(E2E_LATENCY_MS))
        results["salt"] = measure_salt(sim, plan, budget, url)
        results["watch"] = watch_cost.measure_watch(sim, url)  # events watcher: issue 12
        progress("dump against a hostile endpoint")
        results["hostile"] = hostile_cost.measure_hostile()  # issue 17
    finally:
        sim.close()
    results["load_after"] = os.getloadavg()
    results["sources_after"] = measure.source_digest()
    results["elapsed_s"] = budget.elapsed()
    results["skipped"] = budget.skipped
    results["targets"] = report.targets(results)
    return results


def run_scenarios(plan: Plan, budget: Budget, names: Sequence[str]) -> Dict[str, Any]:
    """Only the named rows of "the service pushing back", and the watcher's cost.

    For work on the wire on a shared machine: the rows one change can move,
    compared within one run (ours beside ec2-metadata, taking turns).
    """
    results: Dict[str, Any] = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": measure.machine(),
        "revision": measure.git_revision(),
        "plan": plan._asdict(),
        "load_before": os.getloadavg(),
    }
    sim = measure.Sim(SERVICE_LATENCY_MS)
    try:
        healthy = healthy_answers(sim.url)
        results["service"] = measure_service(plan, budget, healthy, names)
        sim.latency(0)
        results["watch"] = watch_cost.measure_watch(sim, sim.url)
    finally:
        sim.close()
    results["load_after"] = os.getloadavg()
    results["elapsed_s"] = budget.elapsed()
    results["skipped"] = budget.skipped
    # Only the rows measured: the rest of the table's targets have no figure here.
    results["targets"] = [t for t in report.targets(results) if t["figure"] is not None]
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (harness check)")
    parser.add_argument(
        "--scenarios",
        metavar="NAME,...",
        help="only these rows of 'the service pushing back' and the watcher (saves nothing)",
    )
    parser.add_argument("--budget", type=float, default=900.0, metavar="S")
    parser.add_argument("--no-save", action="store_true", help="do not write benchmarks/results")
    parser.add_argument("--only", choices=("hostile",), help="run this section alone")
    args = parser.parse_args(argv)
    if not measure.loopback_only():
        print(
            "bench: refusing to run with a network beyond loopback; use `make bench`, which "
            "runs this inside a loopback-only network namespace",
            file=sys.stderr,
        )
        return 2
    if args.only == "hostile":  # needs no peers: ours alone
        block = hostile_cost.measure_hostile()
        print(hostile_cost.render(block))
        return 0 if all(target["ok"] for target in block["targets"]) else 1
    setup = load_setup()
    if setup is None:
        print(
            "bench: peers not installed; run `make bench` (setup_peers.py first)", file=sys.stderr
        )
        return 2
    if layout.SCRATCH.exists():
        shutil.rmtree(layout.SCRATCH)
    layout.SCRATCH.mkdir(parents=True)
    if args.scenarios:
        names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
        unknown = [name for name in names if name not in SCENARIOS]
        if unknown:
            print("bench: unknown scenario {!r}".format(unknown[0]), file=sys.stderr)
            return 2
        results = run_scenarios(QUICK if args.quick else FULL, Budget(args.budget), names)
        print(report.render(results))
        print(watch_cost.render(results.get("watch")))
        return 1 if report.errors(results) else 0
    results = run(QUICK if args.quick else FULL, Budget(args.budget), setup)
    results["quick"] = args.quick
    print(report.render(results))
    print(watch_cost.render(results.get("watch")))
    print(hostile_cost.render(results.get("hostile")))
    if not args.no_save and not args.quick:
        print(
            "results: {} (and benchmarks/results/latest.json); table: {}".format(
                save(results), layout.SUMMARY.relative_to(layout.ROOT)
            )
        )
    return 1 if report.errors(results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
