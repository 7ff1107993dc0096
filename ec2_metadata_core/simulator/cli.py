"""``ec2-metadata-core simulate``: run the IMDS simulator in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from types import FrameType
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Union

from .scenarios import SCENARIOS

PROG = "ec2-metadata-core simulate"
_ENDPOINT_VAR = "AWS_EC2_METADATA_SERVICE_ENDPOINT"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """Reports bad options as one line (not usage + error) so scripts can show it."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _ranged(kind: Callable[[str], Any], low: float, high: float, what: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be between {low:g} and {high:g}")
        return value

    return convert


def _statuses(text: str) -> List[int]:
    try:
        codes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None
    if not codes or not all(100 <= c <= 599 for c in codes):
        raise argparse.ArgumentTypeError("statuses must be HTTP status codes (100..599)")
    return codes


_FAULT_KEYS: Dict[str, Callable[[str], Any]] = {
    "path": str,
    "method": str,
    "status": int,
    "action": str,
    "delay": float,
    "body": str,
    "times": int,
    "every": int,
    "k": int,
    "chance": float,
}


def _fault(text: str) -> Dict[str, Any]:
    """``--fault`` as ``Fault`` keyword arguments (checked by ``Fault`` itself)."""
    fields: Dict[str, Any] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in _FAULT_KEYS:
            raise argparse.ArgumentTypeError(f"{item!r} is not one of {', '.join(_FAULT_KEYS)}=V")
        try:
            fields[key] = _FAULT_KEYS[key](value.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: not a valid {key}") from None
    return fields


def build_parser() -> argparse.ArgumentParser:
    from .control import SPOT_ACTIONS

    parser = _Parser(
        prog=PROG,
        description="Serve a simulated EC2 instance metadata service (IMDSv2) on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=_ranged(int, 0, 65535, "port"),
        default=1338,
        help="port to bind, 0 for any free port (default 1338)",
    )
    parser.add_argument("--data", metavar="FILE", help="instance data file (default: bundled)")
    parser.add_argument(
        "--latency",
        metavar="MS",
        type=_ranged(float, 0, 600_000, "latency"),
        default=0.0,
        help="milliseconds added to every answer",
    )
    parser.add_argument(
        "--token-ttl-cap",
        metavar="S",
        type=_ranged(int, 1, 21600, "TTL"),
        help="grant tokens at most S seconds",
    )
    parser.add_argument("--no-tags", action="store_true", help="answer 404 under tags/")
    parser.add_argument("--imdsv1", action="store_true", help="also serve token-less requests")
    parser.add_argument(
        "--error-rate",
        metavar="F",
        type=_ranged(float, 0, 1, "rate"),
        default=0.0,
        help="fraction of GETs answered with an error status",
    )
    parser.add_argument(
        "--error-statuses",
        metavar="CODES",
        type=_statuses,
        default=[500],
        help="comma-separated statuses for --error-rate (default 500)",
    )
    parser.add_argument("--seed", type=int, help="random seed for --error-rate and --fault chance")
    wire = parser.add_argument_group(
        "the wire", "by default one request per connection (Connection: close), as the service"
    )
    wire.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        help="push back as the named scenario does (its settings win over the options here)",
    )
    wire.add_argument(
        "--listen-queue",
        metavar="N",
        type=_ranged(int, 0, 65535, "listen queue"),
        default=128,
        help="listen backlog: SYNs beyond it are dropped (default 128)",
    )
    wire.add_argument(
        "--max-connections",
        metavar="N",
        type=_ranged(int, 1, 100_000, "connection cap"),
        help="at most N simultaneous connections",
    )
    wire.add_argument(
        "--over-capacity",
        choices=("reset", "refuse"),
        default="reset",
        help="beyond --max-connections: reset after the request, or refuse at accept",
    )
    wire.add_argument(
        "--rate-limit",
        metavar="R",
        type=_ranged(float, 0.001, 1e9, "rate"),
        help="at most R requests per second (a token bucket)",
    )
    wire.add_argument(
        "--rate-burst",
        metavar="D",
        type=_ranged(float, 1, 1e9, "depth"),
        help="token bucket depth for --rate-limit (default R)",
    )
    wire.add_argument(
        "--throttle",
        choices=("429", "503", "drop"),
        default="503",
        help="answer beyond --rate-limit (default 503; drop: never answered)",
    )
    wire.add_argument("--keep-alive", action="store_true", help="serve many requests a connection")
    wire.add_argument("--http10", action="store_true", help="answer with HTTP/1.0 status lines")
    wire.add_argument(
        "--vanishing-tag",
        metavar="KEY",
        help="a tag the listing names whose own path answers 404",
    )
    wire.add_argument(
        "--fault",
        metavar="K=V,...",
        type=_fault,
        action="append",
        default=[],
        help="a scripted fault, e.g. method=GET,status=503,every=5 or action=silent,chance=0.02 "
        "(keys: path method status action delay body times every k chance)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")
    parser.add_argument(
        "--identity-cert",
        metavar="FILE",
        help="write the certificate that verifies this simulator's identity signatures "
        "(PEM) to FILE, for 'ec2-metadata-core identity --trust FILE'",
    )
    live = parser.add_argument_group(
        "live control",
        "change a running simulator with 'simulate ctl OPERATION' (see 'simulate ctl --help'), "
        "'simulate set PATH VALUE' and 'simulate delete PATH'",
    )
    live.add_argument(
        "--spot-interruption-in",
        metavar="S",
        type=_ranged(float, 0, 1e8, "number of seconds"),
        help="post a spot interruption notice at start, its action S seconds later",
    )
    live.add_argument(
        "--spot-action",
        choices=SPOT_ACTIONS,
        default="terminate",
        help="action of --spot-interruption-in (default terminate)",
    )
    live.add_argument(
        "--no-control",
        action="store_true",
        help="do not serve the control path /_simulator/ (loopback peers only otherwise)",
    )
    return parser


def _fail(message: str) -> int:
    text = " ".join(str(message).split())
    sys.stderr.write(f"{PROG}: error: {text}\n")
    sys.stderr.flush()
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 2 on bad input."""
    if argv is None:
        argv = sys.argv[1:]
    if list(argv[:1]) in (["ctl"], ["set"], ["delete"]):
        from .ctl import main as ctl  # `simulate set ...` is `simulate ctl set ...`

        return ctl(argv[1:] if argv[0] == "ctl" else argv)
    from .scenarios import scenario
    from .server import Fault, Simulator  # keep `--help` and argument errors fast

    try:
        args = build_parser().parse_args(argv)
    except _UsageError as exc:
        return _fail(f"{exc} (see --help)")
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0

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
        return _fail(str(exc))
    sim.control = not args.no_control
    if args.identity_cert is not None:
        if sim.signer is None:
            return _fail("--identity-cert: signing needs the 'cryptography' package")
        try:
            with open(args.identity_cert, "w", encoding="ascii") as handle:
                handle.write(sim.signer.certificate_pem)
        except OSError as exc:
            return _fail(f"--identity-cert {args.identity_cert}: {exc.strerror or exc}")
    if args.spot_interruption_in is not None:
        sim.schedule_spot_interruption(args.spot_interruption_in, args.spot_action)
    try:
        sim.start()
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")

    stop_requested: List[int] = []

    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        stop_requested.append(signum)

    previous: Dict[signal.Signals, Union[Callable[[int, Optional[FrameType]], Any], int, None]]
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: rely on KeyboardInterrupt
            previous[sig] = signal.signal(sig, on_signal)
    try:
        print(sim.url)
        print(f"export {_ENDPOINT_VAR}={sim.url}")
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
