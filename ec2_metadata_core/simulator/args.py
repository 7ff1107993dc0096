"""The simulator's command line: ``simulate`` and its ``ctl``, ``set`` and ``delete``.

One tree of argparse parsers, built by ``add_simulate`` under whichever
parser hosts it: the package CLI (``ec2-metadata-core simulate``, whose
connection options then work before or after any subcommand) or the
standalone ``python -m ec2_metadata_core.simulator``. ``args.operation`` is
set when a control operation was asked for, ``None`` to serve.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Dict, List, NoReturn, Sequence

from .notices import MAINTENANCE_CODES, SPOT_ACTIONS
from .scenarios import SCENARIOS

PROG = "ec2-metadata-core simulate"
ENDPOINT_VAR = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
DEFAULT_ENDPOINT = "http://127.0.0.1:1338"
EXIT_USAGE = 2


class UsageError(Exception):
    """A command line that cannot be run (exit 2); the message says why."""


def fail(prog: str, message: object, status: int = EXIT_USAGE) -> int:
    """Write ``prog: error: message`` as one line on stderr; return ``status``."""
    text = " ".join(str(message).split())
    sys.stderr.write(f"{prog}: error: {text}\n")
    sys.stderr.flush()
    return status


class _OneLineErrorParser(argparse.ArgumentParser):
    """The standalone simulator's parser: a bad option is one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def ranged(kind: Callable[[str], Any], low: float, high: float, what: str) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` within ``low..high``."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be between {low:g} and {high:g}")
        return value

    return convert


def statuses(text: str) -> List[int]:
    """An argparse type: comma-separated HTTP status codes."""
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


def fault(text: str) -> Dict[str, Any]:
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


def endpoint_options(default: Any) -> argparse.ArgumentParser:
    """A parent parser with ``--endpoint`` alone, for the standalone simulator."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--endpoint",
        metavar="URL",
        default=default,
        help=f"the simulator to change (default: ${ENDPOINT_VAR}, else {DEFAULT_ENDPOINT})",
    )
    return parent


def add_simulate(
    parser: argparse.ArgumentParser, parents: Sequence[argparse.ArgumentParser]
) -> None:
    """Give ``parser`` the serving options and the ``ctl``, ``set``, ``delete`` subcommands.

    ``parents`` (options with ``default=SUPPRESS``) are added to every
    subcommand, so what they set before one is kept after it.
    """
    parser.set_defaults(operation=None)
    _serve_options(parser)
    commands = parser.add_subparsers(
        dest="simulate_command", metavar="{ctl,set,delete}", required=False
    )
    ctl = commands.add_parser(
        "ctl",
        parents=parents,
        help="change a running simulator (see 'simulate ctl --help')",
        description="Change a running IMDS simulator: post or withdraw notices, set or "
        "delete any value. Watchers, grains and plays see the change on their next read. "
        f"The simulator is --endpoint, else ${ENDPOINT_VAR}, else {DEFAULT_ENDPOINT} "
        "(loopback only).",
    )
    operations = ctl.add_subparsers(dest="operation", metavar="OPERATION", required=True)
    _add_set(operations, parents)
    _add_delete(operations, parents)
    _add_notices(operations, parents)
    # The shorthands `simulate set ...` and `simulate delete ...`.
    _add_set(commands, parents)
    _add_delete(commands, parents)


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; anything but loopback is warned about)",
    )
    parser.add_argument(
        "--port",
        type=ranged(int, 0, 65535, "port"),
        default=1338,
        help="port to bind, 0 for any free port (default 1338)",
    )
    parser.add_argument("--data", metavar="FILE", help="instance data file (default: bundled)")
    parser.add_argument(
        "--latency",
        metavar="MS",
        type=ranged(float, 0, 600_000, "latency"),
        default=0.0,
        help="milliseconds added to every answer",
    )
    parser.add_argument(
        "--token-ttl-cap",
        metavar="S",
        type=ranged(int, 1, 21600, "TTL"),
        help="grant tokens at most S seconds",
    )
    parser.add_argument("--no-tags", action="store_true", help="answer 404 under tags/")
    parser.add_argument("--imdsv1", action="store_true", help="also serve token-less requests")
    parser.add_argument(
        "--error-rate",
        metavar="F",
        type=ranged(float, 0, 1, "rate"),
        default=0.0,
        help="fraction of GETs answered with an error status",
    )
    parser.add_argument(
        "--error-statuses",
        metavar="CODES",
        type=statuses,
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
        type=ranged(int, 0, 65535, "listen queue"),
        default=128,
        help="listen backlog: SYNs beyond it are dropped (default 128)",
    )
    wire.add_argument(
        "--max-connections",
        metavar="N",
        type=ranged(int, 1, 100_000, "connection cap"),
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
        type=ranged(float, 0.001, 1e9, "rate"),
        help="at most R requests per second (a token bucket)",
    )
    wire.add_argument(
        "--rate-burst",
        metavar="D",
        type=ranged(float, 1, 1e9, "depth"),
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
        type=fault,
        action="append",
        default=[],
        help="a scripted fault, e.g. method=GET,status=503,every=5 or action=silent,chance=0.02 "
        "(keys: path method status action delay body times every k chance; path is a "
        "prefix of the request path, with or without /latest/)",
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
        type=ranged(float, 0, 1e8, "number of seconds"),
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


# The type argparse gives ``add_subparsers()``; not public in typeshed under one name.
_Subparsers = Any


def _add_set(operations: _Subparsers, parents: Sequence[argparse.ArgumentParser]) -> None:
    op = operations.add_parser(
        "set",
        parents=parents,
        help="set a value: set meta-data/tags/instance/Name web-02",
        description="Set the value at PATH (under /latest/); it is served from now on.",
    )
    op.set_defaults(operation="set")
    op.add_argument("path", help="path under /latest/, e.g. meta-data/tags/instance/Name")
    op.add_argument("value")
    how = op.add_mutually_exclusive_group()
    how.add_argument(
        "--json", dest="value_json", action="store_true", help="VALUE is JSON, served as a document"
    )
    how.add_argument(
        "--data",
        dest="value_data",
        action="store_true",
        help="VALUE is JSON in the instance-file format",
    )


def _add_delete(operations: _Subparsers, parents: Sequence[argparse.ArgumentParser]) -> None:
    op = operations.add_parser(
        "delete",
        parents=parents,
        help="delete a value (it then answers 404)",
        description="Delete the value at PATH (under /latest/); it then answers 404.",
    )
    op.set_defaults(operation="delete")
    op.add_argument("path", help="path under /latest/, e.g. meta-data/tags/instance/Name")


def _add_notices(operations: _Subparsers, parents: Sequence[argparse.ArgumentParser]) -> None:
    def add(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = operations.add_parser(name, parents=parents, help=help)
        return parser

    op = add("spot-interruption", "post a spot interruption notice now")
    op.add_argument(
        "--in",
        dest="in_seconds",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds until the action (default 120)",
    )
    op.add_argument("--action", choices=SPOT_ACTIONS, default="terminate")
    add("cancel-spot-interruption", "withdraw the spot notice")
    add("rebalance", "post a rebalance recommendation now")
    add("cancel-rebalance", "withdraw the rebalance recommendation")

    op = add("maintenance", "schedule a maintenance event (prints it)")
    op.add_argument("--code", choices=tuple(MAINTENANCE_CODES), default="system-reboot")
    op.add_argument(
        "--in",
        dest="in_seconds",
        type=float,
        default=86400.0,
        metavar="S",
        help="seconds until the window opens (default 86400)",
    )
    op.add_argument(
        "--duration",
        type=float,
        default=7200.0,
        metavar="S",
        help="seconds the window stays open (default 7200)",
    )
    op.add_argument("--description")
    op.add_argument("--event-id", help="reschedule this scheduled event")
    for name, what in (("cancel-maintenance", "canceled"), ("complete-maintenance", "completed")):
        op = add(name, f"move a scheduled event to history as {what}")
        op.add_argument("event_id")

    op = add("lifecycle", "set the Auto Scaling target lifecycle state")
    op.add_argument("state", nargs="?", help="e.g. InService, Terminated, Warmed:Stopped")
    op.add_argument("--remove", action="store_true", help="remove it (outside an ASG)")
    op = add("tag", "add or change an instance tag")
    op.add_argument("key")
    op.add_argument("value")
    op = add("untag", "remove an instance tag")
    op.add_argument("key")
    add("expire-tokens", "forget every issued token (next request gets 401)")


def build_parser() -> argparse.ArgumentParser:
    """The standalone simulator's parser (``python -m ec2_metadata_core.simulator``)."""
    parser = _OneLineErrorParser(
        prog=PROG,
        description="Serve a simulated EC2 instance metadata service (IMDSv2) on loopback.",
        parents=[endpoint_options(None)],
    )
    add_simulate(parser, [endpoint_options(argparse.SUPPRESS)])
    return parser
