"""``python -m ec2_metadata_core`` and the ``ec2-metadata-core`` script.

Ctrl-C must never print a traceback, whenever it comes. Until ``cli.main``
is ready to turn it into exit status 130, SIGINT keeps the operating system's
default action (the process ends as interrupted, which a shell reports as
130), instead of Python's KeyboardInterrupt out of whichever import it hits.
This module imports nothing else first, and the package's ``__init__`` loads
its names lazily, so that window is the interpreter's own start-up.
"""

import contextlib
import signal
import sys


def main() -> int:
    """Run the CLI with ``sys.argv``; its exit status."""
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    from .cli import main as cli

    return cli(interrupt_ready=True)


if __name__ == "__main__":
    sys.exit(main())
