"""``ec2-metadata-core watch``: IMDS notices as JSON lines, for people and shell scripts.

One JSON object (an ``events.Event``) a line, flushed as it comes. Exit status:
0 stopped (Ctrl-C, SIGTERM, or ``--once`` with nothing ``--exit-on`` names);
1 ``--once`` could not read IMDS, or the output could not be written;
2 bad usage or settings; 4 an event of a kind ``--exit-on`` names was printed
(``watch`` stops at the first one, ``--once`` after printing all it found).
A watch never ends on an IMDS outage: it warns once and reports the gap's
events when IMDS answers again.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from types import FrameType
from typing import Any, Callable, Optional

from .errors import IMDSError
from .events import DEFAULT_INTERVAL, TAG_VALUES_EVERY, Event, Watcher, select_kinds
from .model import EC2Metadata
from .output import emit

EXIT_NOTICE = 4
PROG = "ec2-metadata-core watch"

HELP = "print IMDS notices (spot interruption, maintenance, ...) as JSON lines"
DESCRIPTION = (
    "Print IMDS notices as they arrive, one JSON object a line: spot interruption, "
    "rebalance recommendation, maintenance scheduled/cancelled/completed, Auto Scaling "
    "lifecycle state, tag changes. The first poll prints what is pending now. "
    "Exit status: 0 stopped (Ctrl-C, SIGTERM; --once: nothing --exit-on names), "
    "1 --once could not read IMDS or the output could not be written, 2 bad usage or "
    "settings, 4 an event of a kind --exit-on names was printed. In a script: "
    "watch --exit-on spot/interruption >/dev/null; [ $? = 4 ] && drain"
)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``watch`` (the CLI adds the connection options)."""
    parser.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL,
        metavar="S",
        help="seconds between polls (default {:g}, what AWS asks for spot notices)".format(
            DEFAULT_INTERVAL
        ),
    )
    parser.add_argument(
        "--kinds",
        metavar="K1,K2",
        help="only these kinds or groups (e.g. spot,maintenance); default all",
    )
    parser.add_argument(
        "--tags-interval",
        type=float,
        metavar="S",
        help="seconds between re-reads of tag values and the maintenance history (default: "
        "every {} polls; 0: every poll); added and removed tags show at the next poll, "
        "the history whenever the scheduled list changed".format(TAG_VALUES_EVERY),
    )
    parser.add_argument("--once", action="store_true", help="print what is pending now and exit")
    parser.add_argument(
        "--exit-on",
        metavar="K1,K2",
        help="exit 4 once an event of these kinds or groups is printed",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also log when IMDS answers again"
    )


class _Stop(Exception):
    """SIGTERM: unwinds the watch like Ctrl-C does."""


def _on_term(signum: int, frame: Optional[FrameType]) -> None:
    raise _Stop()


def _write(event: Event) -> None:
    emit((json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))


def _log_to_stderr(verbose: bool, once: bool) -> Callable[[], None]:
    """Send the watcher's log to stderr as one-line messages; returns the undo."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(PROG + ": %(levelname)s: %(message)s"))
    if once:  # the error line says it; "still watching" would be wrong
        handler.addFilter(lambda record: not getattr(record, "imds_outage", False))
    logger = logging.getLogger("ec2_metadata_core.events")
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]

    return undo


def run(metadata: EC2Metadata, args: argparse.Namespace) -> int:
    """The ``watch`` command; IMDS, settings and output errors go to the CLI's handler."""
    exit_on = select_kinds(args.exit_on) if args.exit_on else frozenset()
    watcher = Watcher(
        metadata, interval=args.interval, kinds=args.kinds, tags_interval=args.tags_interval
    )
    undo_logging = _log_to_stderr(args.verbose, args.once)
    try:
        previous: Any = signal.signal(signal.SIGTERM, _on_term)
    except ValueError:  # not the main thread (an in-process caller): no SIGTERM handling
        previous = None
    try:
        if args.once:
            try:
                events = watcher.poll()
            except IMDSError:
                for event in watcher.take_held():  # what could be read, then the error
                    _write(event)
                raise
            for event in events:
                _write(event)
            return EXIT_NOTICE if any(e["kind"] in exit_on for e in events) else 0
        for event in watcher.watch():
            _write(event)
            if event["kind"] in exit_on:
                return EXIT_NOTICE
        return 0  # pragma: no cover - watch() without a stop never ends
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        undo_logging()
