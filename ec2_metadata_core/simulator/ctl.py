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
import inspect
import json
import os
import sys
from typing import Any, Dict, Optional
from urllib.parse import quote, urlsplit

from .args import DEFAULT_ENDPOINT, ENDPOINT_VAR, UsageError, fail
from .control import OPERATIONS, PREFIX, is_loopback

PROG = "ec2-metadata-core simulate ctl"


def _arguments(args: argparse.Namespace) -> Dict[str, Any]:
    """The JSON ``args`` object of the operation (the parsed options that are its own)."""
    operation = args.operation
    if operation == "set":
        value: Any = args.value
        if args.value_json or args.value_data:
            try:
                value = json.loads(args.value)
            except ValueError as exc:
                raise UsageError(f"VALUE is not JSON: {exc}") from None
            if args.value_json:
                value = {"$json": value, "$compact": True}
        return {"path": args.path, "value": value}
    if operation == "lifecycle":
        if args.remove == (args.state is not None):
            raise UsageError("lifecycle: give a STATE or --remove")
        return {"state": args.state}
    # The operation's own parameters; the rest of the namespace is the command line's.
    own = list(inspect.signature(OPERATIONS[operation]).parameters)[1:]
    return {k: v for k, v in vars(args).items() if k in own and v is not None}


def _endpoint(given: Optional[str]) -> str:
    url = (given or os.environ.get(ENDPOINT_VAR) or DEFAULT_ENDPOINT).rstrip("/")
    if urlsplit(url).scheme != "http" or not is_loopback(urlsplit(url).hostname or ""):
        raise UsageError(f"{url!r} is not a simulator on loopback (http://127.0.0.1:PORT)")
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


def run(args: argparse.Namespace) -> int:
    """Send the operation ``args`` names (parsed by ``args.add_simulate``); the exit status."""
    try:
        endpoint = _endpoint(args.endpoint)
        arguments = _arguments(args)
    except UsageError as exc:
        return fail(PROG, f"{exc} (see --help)")
    timeout = getattr(args, "timeout", None) or 5.0
    try:
        result = send(endpoint, args.operation, arguments, timeout=timeout)
    except ValueError as exc:
        return fail(PROG, exc)
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        return fail(PROG, f"cannot reach the simulator at {endpoint}: {reason}", 1)
    if result is not None:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0
