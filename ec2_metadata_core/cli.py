"""``python -m ec2_metadata_core`` / ``ec2-metadata-core``: dump, get, simulate.

Exit status: 0 success; 1 IMDS could not be read, an identity document did not
verify, or the output could not be written (the message says why), or ``dump``
left out a category it does not know (it printed the rest, and one line on
stderr for each left out); 2 bad usage or settings; 3 ``get`` of a value that
is absent on this instance. Errors are one line on stderr, never a traceback.

A command is one entry of ``COMMANDS``: its help, a function that adds its
options, and a function that runs it on an ``EC2Metadata``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import signal
import sys
from typing import (
    Any,
    Callable,
    Collection,
    Dict,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Sequence,
)

from . import config, identity_cli, watch_cli
from .errors import ConfigError, IMDSError
from .model import EC2Metadata
from .output import OutputError, drop_stdout, emit, emit_all, write_text

PROG = "ec2-metadata-core"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ABSENT = 3
FORMATS = ("json", "yaml", "flat", "env")

_EPILOG = """\
exit status: 0 ok, 1 IMDS could not be read, an identity did not verify or the
output not written, 2 bad usage or settings, 3 'get' of a value absent on this instance
('imds get', as ec2-metadata 3.0's, prints an empty line and exits 0).
settings: AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE,
AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_V1_DISABLED, AWS_METADATA_SERVICE_TIMEOUT
and AWS_METADATA_SERVICE_NUM_ATTEMPTS are honoured; options win over them.
connection options go before or after the command.
"""


class UsageError(ConfigError):
    """The command line asks for something that cannot be (exit 2)."""


class Absent(Exception):
    """The value named is absent on this instance (exit 3); the message says which."""


class Command(NamedTuple):
    """One subcommand: ``add_options(parser)``, then ``run(metadata, args) -> exit status``."""

    help: str
    description: str
    add_options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[EC2Metadata, argparse.Namespace], int]


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, whose errors are one line and exit 2, and whose failed writes are errors."""

    def error(self, message: str) -> Any:  # one line, exit 2, as everywhere else
        self.exit(EXIT_USAGE, "{}: error: {}\n".format(self.prog, message))

    def _print_message(self, message: str, file: Any = None) -> None:
        # argparse swallows a failed write: --help into a full disk would exit 0.
        if message:
            write_text(message, file)  # None: the stream was closed at start


class _Version(argparse.Action):
    """``--version``, looked up only when asked (importlib.metadata is slow to load)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("ec2-metadata-core")
        except PackageNotFoundError:  # pragma: no cover - run from a source tree
            number = "unknown"
        emit("{} {}\n".format(PROG, number).encode("utf-8"))
        parser.exit(0)


def _connection_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """The same options on the main parser (default None) and after a command (SUPPRESS).

    SUPPRESS keeps a command's parser from overwriting a value given before the command.
    """
    conn = parser.add_argument_group("connection (default: the AWS SDK settings)")
    conn.add_argument(
        "--endpoint",
        metavar="URL",
        default=default,
        help="IMDS base URL, e.g. http://127.0.0.1:1338",
    )
    conn.add_argument(
        "--ipv6",
        action="store_const",
        const="IPv6",
        dest="endpoint_mode",
        default=default,
        help="use the IPv6 endpoint http://[fd00:ec2::254]",
    )
    conn.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        default=default,
        help="seconds per attempt (default 1)",
    )
    conn.add_argument(
        "--attempts",
        type=int,
        metavar="N",
        default=default,
        help="attempts per request (default 3)",
    )
    conn.add_argument(
        "--deadline",
        type=float,
        metavar="S",
        default=default,
        help="seconds a whole read may take, retries included "
        "(default 4 x attempts x (timeout + 1))",
    )
    conn.add_argument(
        "--allow-imdsv1",
        action="store_true",
        default=default,
        help="fall back to IMDSv1 if the token request is refused (off by default)",
    )


# -- dump ------------------------------------------------------------------------------


def _dump_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default="json",
        help="json (default), yaml, flat (one-level JSON) or env (export lines)",
    )
    parser.add_argument(
        "--include-secrets",
        action="store_true",
        help="add iam_security_credentials and identity_credentials_ec2",
    )
    parser.add_argument("--include-user-data", action="store_true", help="add user_data")
    parser.add_argument("--keys", metavar="K1,K2", help="only these top-level keys")
    parser.add_argument(
        "--prefix",
        default=None,
        help="put before every flat/env name (default: none for flat, ec2_ for env)",
    )
    _output_option(parser)


def _output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write to FILE (mode 0600, replaced whole, a symlink there replaced, not "
        "followed) rather than to standard output: for secrets and user data",
    )


def _dump(metadata: EC2Metadata, args: argparse.Namespace) -> int:
    from .flat import check_prefix, flatten, to_env
    from .snapshot import snapshot, snapshot_keys

    if args.prefix is not None and args.format not in ("flat", "env"):
        raise UsageError("--prefix applies to --format flat and env only")
    prefix = check_prefix(
        ("ec2_" if args.format == "env" else "") if args.prefix is None else args.prefix
    )
    keys: Optional[List[str]] = None
    if args.keys:
        keys = [k.strip().replace("-", "_") for k in args.keys.split(",") if k.strip()]
        valid = snapshot_keys(args.include_secrets, args.include_user_data)
        for key in keys:
            if key in valid:
                continue
            if key in snapshot_keys(True, False):
                raise UsageError("--keys: {} is a secret: it needs --include-secrets".format(key))
            if key in snapshot_keys(False, True):
                raise UsageError("--keys: {} needs --include-user-data".format(key))
            raise UsageError("--keys: " + _unknown(key, valid))
    stats: Dict[str, Any] = {}
    data: Dict[str, Any] = snapshot(
        metadata,
        include_secrets=args.include_secrets,
        include_user_data=args.include_user_data,
        keys=keys,
        stats=stats,
    )
    # JSON goes out piece by piece: a document of megabytes of escaped
    # control characters is never held whole, twice over (str, then bytes).
    pieces: Iterable[str]
    if args.format == "json":
        pieces = json.JSONEncoder(indent=2, sort_keys=True, ensure_ascii=False).iterencode(data)
    elif args.format == "flat":
        flat = {prefix + key: value for key, value in flatten(data).items()}
        pieces = json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(flat)
    elif args.format == "env":
        pieces = [to_env(flatten(data), prefix)]
    else:
        try:
            import yaml
        except ImportError:
            raise ConfigError("--format yaml needs PyYAML: pip install PyYAML") from None
        pieces = [_yaml(yaml, data).rstrip("\n")]
    emit_all(itertools.chain((piece.encode("utf-8") for piece in pieces), [b"\n"]), args.output)
    # A category the model does not know that was left out: the rest is
    # printed, and the status says that something is missing.
    for message in stats["refused"]:
        _say("error: {}".format(message))
    return EXIT_FAILED if stats["refused"] else 0


# -- get -------------------------------------------------------------------------------


def _get_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument(
        "-n", dest="newline", action="store_false", help="no newline after the value"
    )
    _output_option(parser)


def _get(metadata: EC2Metadata, args: argparse.Namespace) -> int:
    from .lazy import declared
    from .sensitive import SECRET_KEYS, USER_DATA_KEY
    from .snapshot import snapshot, snapshot_keys, to_json

    name: str = args.name
    names = snapshot_keys(True, True)
    first, dot, rest = name.partition(".")
    key = first.replace("-", "_")
    flat_name = None
    data: Optional[Dict[str, Any]] = None
    if key not in names and key in declared(EC2Metadata):
        # An attribute whose value another key holds (block_device_mapping_names).
        data = {key: to_json(getattr(metadata, key))}
    elif key not in names:
        key = _flat_owner(name, names) if not dot else ""
        if not key:
            # A category the model does not know: the whole snapshot has it, if IMDS does.
            data = snapshot(metadata)
            key = first.replace("-", "_").lower()
            if key not in data or key in names:
                raise UsageError(_unknown(name, names))
        else:
            flat_name = name
    end = "\n" if args.newline else ""
    if key == USER_DATA_KEY and not rest and flat_name is None:
        raw = metadata.user_data
        if raw is None:
            raise Absent("{} is absent on this instance".format(name))
        emit(raw + end.encode(), args.output)
        return 0
    if data is None:  # naming a secret is asking for it
        data = snapshot(
            metadata,
            keys=[key],
            include_secrets=key in SECRET_KEYS,
            include_user_data=key == USER_DATA_KEY,
        )
    if data[key] is None and key == "tags":
        from .errors import TagsNotEnabledError

        raise Absent("{} is absent: {}".format(name, TagsNotEnabledError()))
    if flat_name is not None:
        from .flat import flatten

        value = flatten(data).get(flat_name)
        if value is None and not isinstance(data[key], (dict, list)):
            raise UsageError(_unknown(name, names))  # region_foo: nothing is under region
    else:
        value = _walk(data[key], rest, key)
    if value is None:
        raise Absent("{} is absent on this instance".format(name))
    emit((_render(value) + end).encode("utf-8"), args.output)
    return 0


def _flat_owner(name: str, names: Sequence[str]) -> str:
    """The top-level key a flat export name (``tags_Name``) comes from, or ``""``."""
    owners = [key for key in names if name.startswith(key + "_")]
    return max(owners, key=len) if owners else ""


def _walk(value: Any, rest: str, where: str) -> Any:
    """Follow a dotted path into a snapshot value; ``None`` if it ends at an absent value.

    A key a mapping lacks raises ``Absent``, naming the keys it has that are close.

    Mapping keys may hold dots themselves (the tag ``cost.center``): the
    longest run of parts that is a key wins. A list takes an index. A path
    that goes on past a string or a number is a ``UsageError``: no instance
    has a value there.
    """
    while rest:
        if value is None:
            return None
        if isinstance(value, dict):
            cuts = [len(rest)] + [i for i in range(len(rest) - 1, 0, -1) if rest[i] == "."]
            cut = next((c for c in cuts if rest[:c] in value), None)
            if cut is None:
                asked = "{}.{}".format(where, rest)
                near = _close(asked, ("{}.{}".format(where, k) for k in value))
                raise Absent("{} is absent on this instance{}".format(asked, near))
            part = rest[:cut]
        elif isinstance(value, list):
            part = rest.split(".", 1)[0]
            if not part.isdigit() or not part.isascii():
                raise UsageError(
                    "{} is a list: '{}' is not an index (0, 1, ...)".format(where, part)
                )
            if int(part) >= len(value):
                return None
        else:
            raise UsageError(
                "{} is a {}, not an object or a list: nothing is under it".format(
                    where, "string" if isinstance(value, str) else "number or boolean"
                )
            )
        value = value[part] if isinstance(value, dict) else value[int(part)]
        where, rest = "{}.{}".format(where, part), rest[len(part) + 1 :]
    return value


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return "\n".join("" if v is None else str(v) for v in value)
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _close(name: str, names: Iterable[str]) -> str:
    """``": did you mean a or b?"`` for the names close to ``name``, or ``""``."""
    import difflib

    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    return ": did you mean {}?".format(" or ".join(close)) if close else ""


def _unknown(name: str, names: Sequence[str]) -> str:
    """An unknown name, with the attribute that reads the IMDS path of that name, if any."""
    from .lazy import declared

    kebab = name.replace("_", "-")
    # `local-ipv4` is IMDS's name of the attribute `private_ipv4`.
    readers = [
        attribute
        for attribute, declaration in declared(EC2Metadata).items()
        if attribute in names
        and any(item.rstrip("/").rsplit("/", 1)[-1] == kebab for item in declaration.reads)
    ]
    if readers:
        hint = ": IMDS's {} is {}".format(kebab, " or ".join(readers))
    else:
        hint = _close(name.replace("-", "_"), names)
    return "unknown name {!r}{} ('dump' shows every name)".format(name, hint)


# -- imds: ec2-metadata 3.0's command line ------------------------------------------


def _imds_options(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="imds_command", metavar="get|json", required=True)
    one = verbs.add_parser("get", help="print one value; an absent one prints an empty line")
    one.add_argument("name")
    one.add_argument("-n", dest="newline", action="store_false", help="no newline after it")
    many = verbs.add_parser("json", help="print the values named as one JSON object")
    many.add_argument("names", nargs="+", metavar="name")


def _imds(metadata: EC2Metadata, args: argparse.Namespace) -> int:
    """ec2-metadata 3.0's ``imds get NAME [-n]`` and ``imds json NAMES...``, output for output.

    As there, a value the instance does not have is an empty line (``get``) or
    ``null`` (``json``) and exit 0, names keep the spelling given, and ``json``
    is indented by 2 in the order asked. Unlike there, a failure is one line
    and exit 1 (3.0: a traceback), and mappings and lists print as JSON (3.0:
    Python's repr); naming a secret or the user data is asking for it.
    """
    from .sensitive import SECRET_KEYS, USER_DATA_KEY
    from .snapshot import snapshot, snapshot_keys

    names: List[str] = [args.name] if args.imds_command == "get" else args.names
    valid = snapshot_keys(True, True)
    keys = [name.replace("-", "_") for name in names]
    for name, key in zip(names, keys):
        if key not in valid:
            raise UsageError(_unknown(name, valid))
    if args.imds_command == "get" and keys[0] == USER_DATA_KEY:
        emit((metadata.user_data or b"") + (b"\n" if args.newline else b""))
        return 0
    data = snapshot(
        metadata,
        keys=keys,
        include_secrets=bool(SECRET_KEYS.intersection(keys)),
        include_user_data=USER_DATA_KEY in keys,
    )
    if args.imds_command == "json":
        out = json.dumps({name: data[key] for name, key in zip(names, keys)}, indent=2) + "\n"
    else:
        value = data[keys[0]]
        if value is None or isinstance(value, (str, int, float)):
            out = "" if value is None else str(value)
        else:
            out = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
        out += "\n" if args.newline else ""
    emit(out.encode("utf-8"))
    return 0


COMMANDS: Dict[str, Command] = {
    "dump": Command(
        "print the whole instance (the snapshot)",
        "Print every metadata category as one document. Secrets (IAM and identity "
        "credentials) and user data are left out unless asked for.",
        _dump_options,
        _dump,
    ),
    "get": Command(
        "print one value",
        "Print one value: an attribute name (snake or kebab case, e.g. region, "
        "public-ipv4), a dotted path into the snapshot (tags.Name, "
        "network_interfaces.<mac>.subnet_id, events_maintenance_scheduled.0.Code) or a "
        "name of the flat export (tags_Name). Strings print as they are, lists one item "
        "a line, mappings as JSON; user_data prints its raw bytes.",
        _get_options,
        _get,
    ),
    "watch": Command(watch_cli.HELP, watch_cli.DESCRIPTION, watch_cli.add_options, watch_cli.run),
    "imds": Command(
        "ec2-metadata 3.0's 'imds get NAME' and 'imds json NAMES...'",
        "The command line of the ec2-metadata library 3.0 (its 'imds' script), under this "
        "program's name so it cannot clash with an installed 'imds': 'imds get NAME [-n]' "
        "prints one value, 'imds json NAME...' the values named as a JSON object. As "
        "there, an absent value prints an empty line (get) or null (json) and exits 0; a "
        "failure exits 1 with one line. NAME is an attribute name (snake or kebab case).",
        _imds_options,
        _imds,
    ),
    "identity": Command(
        identity_cli.HELP, identity_cli.DESCRIPTION, identity_cli.add_options, identity_cli.run
    ),
}


def _parser(named: Optional[Collection[str]] = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``named``, only those commands get their options.

    A command whose name is not among the words of the command line cannot be
    the one run, so ``main`` builds the options of the named ones alone: the
    whole tree (``simulate`` with its two dozen subparsers) took about 7 ms of
    a 100 ms ``dump`` process. Every command is still listed and accepted.
    """

    def wanted(name: str) -> bool:
        return named is None or name in named

    common = _ArgumentParser(add_help=False)
    _connection_options(common, argparse.SUPPRESS)
    parser = _ArgumentParser(
        prog=PROG,
        description="Read EC2 instance metadata (IMDSv2) for people, scripts and templates.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version)
    _connection_options(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = commands.add_parser(
            name, parents=[common], help=command.help, description=command.description
        )
        if wanted(name):
            command.add_options(sub)
    simulate = commands.add_parser(
        "simulate",
        parents=[common],
        help="serve a simulated IMDS on 127.0.0.1, or change one (see 'simulate --help')",
        description="Serve a simulated EC2 instance metadata service (IMDSv2) on loopback, "
        "or change a running one with ctl, set or delete. The connection options are "
        "those of ctl, set and delete (--endpoint: the simulator to change).",
    )
    if wanted("simulate"):
        from .simulator.args import add_simulate

        add_simulate(simulate, [common])
    return parser


def _metadata(args: argparse.Namespace) -> EC2Metadata:
    # The connection options (``_connection_options``) carry the settings' own names.
    settings = config.Settings.from_mapping(config.settings_in(vars(args)))
    from .client import IMDSClient

    return EC2Metadata(client=IMDSClient(settings=settings))


# Characters YAML reads as line breaks: a plain or single-quoted scalar
# holding one loads back changed (U+0085 alone becomes a space).
_YAML_BREAKS = ("\x85", "\u2028", "\u2029")


def _yaml(yaml: Any, data: Any) -> str:
    """``data`` as YAML that loads back as ``data``: a string holding a line
    break YAML would fold is written double-quoted, where it is escaped."""

    class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
        """libyaml's emitter where PyYAML has it: a hundred times as fast on large values."""

    def string(dumper: Any, text: str) -> Any:
        style = '"' if any(char in text for char in _YAML_BREAKS) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    Dumper.add_representer(str, string)
    dumped: str = yaml.dump(
        data, Dumper=Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True
    )
    return dumped


def _say(message: str) -> None:
    # If stderr is gone too, the exit status is all that is left.
    with contextlib.suppress(OSError, ValueError):
        if sys.stderr is not None:
            print("{}: {}".format(PROG, message), file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None, interrupt_ready: bool = False) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); the exit status.

    ``interrupt_ready`` (from ``__main__``, which held SIGINT at its default
    action during the imports): Ctrl-C becomes KeyboardInterrupt again, and
    from here on exit status 130.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if interrupt_ready:
            with contextlib.suppress(ValueError):  # not the main thread
                signal.signal(signal.SIGINT, signal.default_int_handler)
        args = _parser(set(args_list)).parse_args(args_list)
        if args.command == "simulate":
            from .simulator.cli import run as simulate

            return simulate(args)
        return COMMANDS[args.command].run(_metadata(args), args)
    except ConfigError as exc:
        _say("error: {}".format(exc))
        return EXIT_USAGE
    except Absent as exc:
        _say(str(exc))
        return EXIT_ABSENT
    except IMDSError as exc:
        _say("error: {}".format(exc))
        return EXIT_FAILED
    except OutputError as exc:
        drop_stdout()
        _say("error: cannot write the output: {}".format(exc))
        return EXIT_FAILED
    except BrokenPipeError:  # `... | head`: the reader left, nothing to report
        drop_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
