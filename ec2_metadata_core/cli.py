"""``python -m ec2_metadata_core`` / ``ec2-metadata-core``: dump, get, simulate.

Exit status: 0 success; 1 IMDS could not be read (the message says why);
2 bad usage or settings; 3 ``get`` of a value that is absent on this instance.
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence

from . import config
from .errors import ConfigError, IMDSError
from .model import EC2Metadata

PROG = "ec2-metadata-core"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ABSENT = 3
FORMATS = ("json", "yaml", "flat", "env")

_EPILOG = """\
exit status: 0 ok, 1 IMDS could not be read, 2 bad usage or settings,
3 'get' of a value absent on this instance.
settings: AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE,
AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_V1_DISABLED, AWS_METADATA_SERVICE_TIMEOUT
and AWS_METADATA_SERVICE_NUM_ATTEMPTS are honoured; options win over them.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as everywhere else
        self.exit(EXIT_USAGE, "{}: error: {}\n".format(self.prog, message))


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    conn = common.add_argument_group("connection (default: the AWS SDK settings)")
    conn.add_argument("--endpoint", metavar="URL", help="IMDS base URL, e.g. http://127.0.0.1:1338")
    conn.add_argument(
        "--ipv6",
        action="store_const",
        const="IPv6",
        dest="endpoint_mode",
        help="use the IPv6 endpoint http://[fd00:ec2::254]",
    )
    conn.add_argument("--timeout", type=float, metavar="S", help="seconds per attempt (default 1)")
    conn.add_argument("--attempts", type=int, metavar="N", help="attempts per request (default 3)")
    conn.add_argument(
        "--allow-imdsv1",
        action="store_true",
        default=None,
        help="fall back to IMDSv1 if the token request is refused (off by default)",
    )
    parser = _Parser(
        prog=PROG,
        description="Read EC2 instance metadata (IMDSv2) for people, scripts and templates.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    dump = commands.add_parser(
        "dump",
        parents=[common],
        help="print the whole instance (the snapshot)",
        description="Print every metadata category as one document. Secrets (IAM and "
        "identity credentials) and user data are left out unless asked for.",
    )
    dump.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default="json",
        help="json (default), yaml, flat (one-level JSON) or env (export lines)",
    )
    dump.add_argument(
        "--include-secrets",
        action="store_true",
        help="add iam_security_credentials and identity_credentials_ec2",
    )
    dump.add_argument("--include-user-data", action="store_true", help="add user_data")
    dump.add_argument("--keys", metavar="K1,K2", help="only these top-level keys")
    dump.add_argument(
        "--prefix",
        default=None,
        help="prefix for flat/env keys (default: none for flat, ec2_ for env)",
    )

    get = commands.add_parser(
        "get",
        parents=[common],
        help="print one value",
        description="Print one value: an attribute name (snake or kebab case, e.g. "
        "region, public-ipv4) or a dotted path into the snapshot (tags.Name, "
        "network_interfaces.<mac>.subnet_id). Strings print as they are, lists one "
        "item a line, mappings as JSON; user_data prints its raw bytes.",
    )
    get.add_argument("name")
    get.add_argument("-n", dest="newline", action="store_false", help="no newline after the value")

    from .watch_cli import add_parser as add_watch

    add_watch(commands, common)
    commands.add_parser(
        "simulate",
        help="serve a simulated IMDS on 127.0.0.1 (see 'simulate --help')",
        add_help=False,
    )
    return parser


def _metadata(args: argparse.Namespace) -> EC2Metadata:
    settings = config.resolve(
        endpoint=args.endpoint,
        endpoint_mode=args.endpoint_mode,
        timeout=args.timeout,
        attempts=args.attempts,
        allow_imdsv1=args.allow_imdsv1,
    )
    from .client import IMDSClient

    return EC2Metadata(client=IMDSClient(settings=settings))


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return "\n".join("" if v is None else str(v) for v in value)
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _dump(metadata: EC2Metadata, args: argparse.Namespace) -> int:
    from .flat import flatten, to_env
    from .snapshot import snapshot, snapshot_keys

    keys: Optional[List[str]] = None
    if args.keys:
        keys = [k.strip().replace("-", "_") for k in args.keys.split(",") if k.strip()]
        valid = snapshot_keys(args.include_secrets, args.include_user_data)
        bad = [k for k in keys if k not in valid]
        if bad:
            raise ConfigError("--keys: unknown key {!r}; keys: {}".format(bad[0], ", ".join(valid)))
    data: Dict[str, Any] = snapshot(
        metadata,
        include_secrets=args.include_secrets,
        include_user_data=args.include_user_data,
        keys=keys,
    )
    if args.format == "json":
        out = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    elif args.format == "flat":
        out = json.dumps(flatten(data, args.prefix or ""), indent=2, ensure_ascii=False)
    elif args.format == "env":
        out = to_env(flatten(data, ""), "ec2_" if args.prefix is None else args.prefix)
    else:
        try:
            import yaml
        except ImportError:
            raise ConfigError("--format yaml needs PyYAML: pip install PyYAML") from None
        out = yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True)
        out = out.rstrip("\n")
    _emit((out + "\n").encode("utf-8"))
    return 0


def _get(metadata: EC2Metadata, args: argparse.Namespace) -> int:
    from .snapshot import SECRET_KEYS, USER_DATA_KEY, snapshot, snapshot_keys

    first, _, rest = args.name.partition(".")
    key = first.replace("-", "_")
    if key not in snapshot_keys(True, True):
        raise ConfigError(
            "unknown name {!r}; names: {}".format(args.name, ", ".join(snapshot_keys(True, True)))
        )
    end = "\n" if args.newline else ""
    if key == USER_DATA_KEY and not rest:
        raw = metadata.user_data
        if raw is None:
            return _absent(args.name)
        _emit(raw + end.encode())
        return 0
    # Naming a secret is asking for it.
    data = snapshot(
        metadata,
        keys=[key],
        include_secrets=key in SECRET_KEYS,
        include_user_data=key == USER_DATA_KEY,
    )
    value = _walk(data[key], rest)
    if value is None:
        return _absent(args.name)
    _emit((_render(value) + end).encode("utf-8"))
    return 0


def _emit(data: bytes) -> None:
    """Write bytes as they are: output is UTF-8 whatever the locale says.

    Tags and user data may hold any character; an ASCII terminal encoding
    must not turn a good answer into a traceback.
    """
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _walk(value: Any, rest: str) -> Any:
    """Follow a dotted path; keys may hold dots themselves (tag ``cost.center``)."""
    while rest:
        if not isinstance(value, dict):
            return None
        # The longest run of dotted parts that is a key wins.
        cuts = [len(rest)] + [i for i in range(len(rest) - 1, 0, -1) if rest[i] == "."]
        for cut in cuts:
            if rest[:cut] in value:
                value, rest = value[rest[:cut]], rest[cut + 1 :]
                break
        else:
            return None
    return value


def _absent(name: str) -> int:
    print("{}: {} is absent on this instance".format(PROG, name), file=sys.stderr)
    return EXIT_ABSENT


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if "simulate" in args_list[:1]:
        from .simulator import main as simulate

        return simulate(args_list[1:])
    args = _parser().parse_args(args_list)
    try:
        metadata = _metadata(args)
        if args.command == "watch":
            from .watch_cli import run as watch

            return watch(metadata, args)
        if args.command == "dump":
            return _dump(metadata, args)
        return _get(metadata, args)
    except ConfigError as exc:
        print("{}: error: {}".format(PROG, exc), file=sys.stderr)
        return EXIT_USAGE
    except IMDSError as exc:
        print("{}: error: {}".format(PROG, exc), file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `... | head`: the reader left, nothing to report
        return 0
    except KeyboardInterrupt:
        return 130
