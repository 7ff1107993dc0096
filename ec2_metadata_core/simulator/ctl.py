"""``ec2-metadata-core simulate ctl``: change a running simulator from a shell.

Sends one control operation (see ``control.py``) to the simulator at
``--endpoint`` (default: ``AWS_EC2_METADATA_SERVICE_ENDPOINT``, else the
``simulate`` default ``http://127.0.0.1:1338``), prints its result as one JSON
line if it has one. Loopback endpoints only: this must never reach a real IMDS.
Exit status: 0 done, 1 the simulator could not be reached, 2 bad usage or an
operation the simulator refused (the message says why).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from typing import Any, Dict, Optional, Sequence
from urllib.parse import quote, urlsplit

from .cli import _Parser, _UsageError  # one-line usage errors, as in `simulate`
from .control import MAINTENANCE_CODES, PREFIX, SPOT_ACTIONS

PROG = "ec2-metadata-core simulate ctl"
DEFAULT_ENDPOINT = "http://127.0.0.1:1338"
_ENDPOINT_VAR = "AWS_EC2_METADATA_SERVICE_ENDPOINT"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Change a running IMDS simulator: post or withdraw notices, set or "
        "delete any value. Watchers, grains and plays see the change on their next read.",
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help=f"the simulator (default: ${_ENDPOINT_VAR}, else {DEFAULT_ENDPOINT})",
    )
    ops = parser.add_subparsers(dest="operation", metavar="OPERATION", required=True)

    op = ops.add_parser("set", help="set a value: set meta-data/tags/instance/Name web-02")
    op.add_argument("path", help="path under /latest/, e.g. meta-data/tags/instance/Name")
    op.add_argument("value")
    how = op.add_mutually_exclusive_group()
    how.add_argument("--json", action="store_true", help="VALUE is JSON, served as a document")
    how.add_argument(
        "--data", action="store_true", help="VALUE is JSON in the instance-file format"
    )
    op = ops.add_parser("delete", help="delete a value (it then answers 404)")
    op.add_argument("path")

    op = ops.add_parser("spot-interruption", help="post a spot interruption notice now")
    op.add_argument(
        "--in",
        dest="in_seconds",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds until the action (default 120)",
    )
    op.add_argument("--action", choices=SPOT_ACTIONS, default="terminate")
    ops.add_parser("cancel-spot-interruption", help="withdraw the spot notice")
    ops.add_parser("rebalance", help="post a rebalance recommendation now")
    ops.add_parser("cancel-rebalance", help="withdraw the rebalance recommendation")

    op = ops.add_parser("maintenance", help="schedule a maintenance event (prints it)")
    op.add_argument("--code", choices=tuple(MAINTENANCE_CODES), default="system-reboot")
    op.add_argument(
        "--in",
        dest="in_seconds",
        type=float,
        default=86400.0,
        metavar="S",
        help="seconds until the window opens (default 86400)",
    )
    op.add_argument("--duration", type=float, default=7200.0, metavar="S")
    op.add_argument("--description")
    op.add_argument("--event-id", help="reschedule this scheduled event")
    for name, what in (("cancel-maintenance", "canceled"), ("complete-maintenance", "completed")):
        op = ops.add_parser(name, help=f"move a scheduled event to history as {what}")
        op.add_argument("event_id")

    op = ops.add_parser("lifecycle", help="set the Auto Scaling target lifecycle state")
    op.add_argument("state", nargs="?", help="e.g. InService, Terminated, Warmed:Stopped")
    op.add_argument("--remove", action="store_true", help="remove it (outside an ASG)")
    op = ops.add_parser("tag", help="add or change an instance tag")
    op.add_argument("key")
    op.add_argument("value")
    op = ops.add_parser("untag", help="remove an instance tag")
    op.add_argument("key")
    ops.add_parser("expire-tokens", help="forget every issued token (next request gets 401)")
    return parser


def _arguments(args: argparse.Namespace) -> Dict[str, Any]:
    """The JSON ``args`` object of the operation."""
    operation = args.operation
    if operation == "set":
        value: Any = args.value
        if args.json or args.data:
            try:
                value = json.loads(args.value)
            except ValueError as exc:
                raise _UsageError(f"VALUE is not JSON: {exc}") from None
            if args.json:
                value = {"$json": value, "$compact": True}
        return {"path": args.path, "value": value}
    if operation == "lifecycle":
        if args.remove == (args.state is not None):
            raise _UsageError("lifecycle: give a STATE or --remove")
        return {"state": args.state}
    skip = {"endpoint", "operation"}
    return {k: v for k, v in vars(args).items() if k not in skip and v is not None}


def _endpoint(given: Optional[str]) -> str:
    url = (given or os.environ.get(_ENDPOINT_VAR) or DEFAULT_ENDPOINT).rstrip("/")
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if urlsplit(url).scheme != "http" or not loopback:
        raise _UsageError(f"{url!r} is not a simulator on loopback (http://127.0.0.1:PORT)")
    return url


def send(endpoint: str, operation: str, arguments: Dict[str, Any], timeout: float = 5.0) -> Any:
    """POST one operation; its result, or ``ValueError`` (refused) / ``OSError`` (unreachable)."""
    import urllib.error
    import urllib.request

    url = "{}{}{}?args={}".format(
        _endpoint(endpoint), PREFIX, operation, quote(json.dumps(arguments), safe="")
    )
    # No proxy: an http_proxy in the environment must not see (or forward) this.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with opener.open(request, timeout=timeout) as response:
            return json.loads(response.read())["result"]
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code} (is this an ec2-metadata-core simulator?)"
        raise ValueError(message) from None


def _fail(message: str, status: int) -> int:
    sys.stderr.write("{}: error: {}\n".format(PROG, " ".join(str(message).split())))
    return status


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        endpoint = _endpoint(args.endpoint)
        arguments = _arguments(args)
    except _UsageError as exc:
        return _fail(f"{exc} (see --help)", 2)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    try:
        result = send(endpoint, args.operation, arguments)
    except ValueError as exc:
        return _fail(str(exc), 2)
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        return _fail(f"cannot reach the simulator at {endpoint}: {reason}", 1)
    if result is not None:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0
