"""``python -m ec2_metadata_core`` and the ``ec2-metadata-core`` script.

Ctrl-C must never print a traceback, whenever it comes. Until ``cli.main``
is ready to turn it into exit status 130, SIGINT keeps the operating system's
default action (the process ends as interrupted, which a shell reports as
130), instead of Python's KeyboardInterrupt out of whichever import it hits.
That is this module's first statement, through ``_signal``, which the
interpreter loaded at start-up (``signal`` would first import ``enum``), and
the package's ``__init__`` loads its names lazily, so the window left is the
interpreter's own start-up.
"""

import _signal  # type: ignore[import-not-found]  # no stub: the C half of signal

try:  # noqa: SIM105 (contextlib would be an import before this)
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
except ValueError:  # not the main thread: the caller's interpreter, not ours
    pass

import sys


def main() -> int:
    """Run the CLI with ``sys.argv``; its exit status."""
    from .cli import main as cli

    return cli(interrupt_ready=True)


if __name__ == "__main__":
    sys.exit(main())
