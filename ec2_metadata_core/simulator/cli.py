"""``ec2-metadata-core simulate``: run the IMDS simulator in the foreground, or change one.

The command line itself is ``args.py``; this runs what it parsed. Ctrl-C
(SIGINT) or SIGTERM at any moment stops it: 0 once serving, 130 if it came
before the simulator was listening, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from types import FrameType
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .args import ENDPOINT_VAR, PROG, build_parser, fail
from .control import is_loopback

EXIT_INTERRUPTED = 130


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m ec2_metadata_core.simulator``: 0 on a clean stop, 2 on bad input."""
    try:
        try:
            args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
        except SystemExit as exc:  # --help, or a usage error already written
            return exc.code if isinstance(exc.code, int) else 0
        return run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def run(args: argparse.Namespace) -> int:
    """Run parsed ``simulate`` arguments (``args.add_simulate``): a control operation, or serve."""
    if args.operation is not None:
        from .ctl import run as control

        return control(args)
    return serve(args)


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 2 on bad input."""
    from .faults import Fault
    from .scenarios import scenario
    from .server import Simulator  # keep `--help` and argument errors fast

    try:
        sim = Simulator(
            instance=args.data,
            host=args.host,
            port=args.port,
            latency=args.latency / 1000.0,
            token_ttl_cap=args.token_ttl_cap,
            tags_enabled=not args.no_tags,
            imdsv1=args.imdsv1,
            error_rate=args.error_rate,
            error_statuses=args.error_statuses,
            seed=args.seed,
            verbose=args.verbose,
            listen_queue=args.listen_queue,
            max_connections=args.max_connections,
            over_capacity=args.over_capacity,
            rate_limit=args.rate_limit,
            rate_burst=args.rate_burst,
            throttle=args.throttle,
            keep_alive=args.keep_alive,
            http10=args.http10,
            vanishing_tag=args.vanishing_tag,
            faults=[Fault(**fields) for fields in args.fault],
        )
        if args.scenario is not None:
            sim.configure(**scenario(args.scenario))
    except ValueError as exc:
        return fail(PROG, exc)
    sim.control = not args.no_control
    if args.identity_cert is not None:
        if sim.signer is None:
            return fail(PROG, "--identity-cert: signing needs the 'cryptography' package")
        try:
            with open(args.identity_cert, "w", encoding="ascii") as handle:
                handle.write(sim.signer.certificate_pem)
        except OSError as exc:
            return fail(PROG, f"--identity-cert {args.identity_cert}: {exc.strerror or exc}")
    if args.spot_interruption_in is not None:
        sim.schedule_spot_interruption(args.spot_interruption_in, args.spot_action)
    if not is_loopback(args.host):
        sys.stderr.write(
            f"{PROG}: warning: listening on {args.host}, not loopback: other machines can "
            "read this simulated IMDS"
            + ("" if args.no_control else " (its control path stays loopback-only)")
            + "\n"
        )
    stop_requested: List[int] = []

    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        stop_requested.append(signum)

    previous: Dict[signal.Signals, Union[Callable[[int, Optional[FrameType]], Any], int, None]]
    previous = {}
    try:
        try:
            sim.start()
        except OSError as exc:
            return fail(PROG, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: rely on KeyboardInterrupt
                previous[sig] = signal.signal(sig, on_signal)
        print(sim.url)
        print(f"export {ENDPOINT_VAR}={sim.url}")
        sys.stdout.flush()
        while not stop_requested:
            time.sleep(0.1)  # a flag, not an Event: Event.set() in a handler can deadlock
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


__all__ = ["main", "run", "serve"]
