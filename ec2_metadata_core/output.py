"""What the commands print: bytes to standard output, or to a private file, and how writing fails.

Every command (``cli.py``, ``watch_cli.py``, ``identity_cli.py``) writes
through ``emit``: bytes as they are, UTF-8 whatever the locale says (tags
and user data may hold any character, and an ASCII terminal encoding must
not turn a good answer into a traceback). A write that fails is an
``OutputError``, which the CLI reports in one line and exit status 1; a
closed pipe (``| head``) stays a ``BrokenPipeError``, which it ends quietly.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import IO, Iterable, Iterator, List, Optional, TypeVar

T = TypeVar("T")


class OutputError(Exception):
    """Standard output could not be written (a full disk, a closed descriptor)."""


def emit(data: bytes, output: Optional[str] = None) -> None:
    """Write ``data`` to standard output, or to the file ``output`` (``write_private``)."""
    emit_all([data], output)


# The pieces of a document are joined up to this size before each write:
# JSON's encoder yields a piece per token, and with PYTHONUNBUFFERED (common
# in containers) or ``python -u`` each would be a system call of its own.
_CHUNK = 64 * 1024


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The pieces in order, small ones joined; a piece of a chunk or more goes as it is
    (a YAML document is one piece, and copying it would double the peak)."""
    batch: List[bytes] = []
    size = 0
    for piece in pieces:
        if not piece:
            continue
        if batch and size + len(piece) > _CHUNK:
            yield b"".join(batch)
            batch, size = [], 0
        if len(piece) >= _CHUNK:
            yield piece
            continue
        batch.append(piece)
        size += len(piece)
    if batch:
        yield b"".join(batch)


def emit_all(pieces: Iterable[bytes], output: Optional[str] = None) -> None:
    """``emit`` of the pieces of one document, written as they come, in chunks of 64 KiB."""
    pieces = _chunked(pieces)
    if output is not None:
        try:
            write_private(output, pieces)
        except OSError as exc:
            raise OutputError("{}: {}".format(output, exc.strerror or exc)) from None
        return
    stdout = _open(sys.stdout)
    with _writing():
        stdout.flush()  # text written before, by argparse say, goes first
        for piece in pieces:
            stdout.buffer.write(piece)
        stdout.buffer.flush()


def write_private(path: str, pieces: Iterable[bytes]) -> None:
    """Write ``pieces`` to ``path``, readable by its owner only (0600), atomically.

    A new file beside it, created 0600 whatever the umask (never a file
    that exists, never through a symlink), filled and synced, then renamed
    over ``path``: a reader sees the old file or the whole new one, and a
    symlink at ``path`` is replaced, not followed. Raises ``OSError``.
    """
    import secrets

    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(
        directory, ".{}.{}.tmp".format(os.path.basename(path), secrets.token_hex(6))
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            os.fchmod(stream.fileno(), 0o600)  # the umask could have taken more
            for piece in pieces:
                stream.write(piece)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_text(text: str, stream: Optional[IO[str]]) -> None:
    """Write ``text`` to ``stream`` (argparse's help, its errors); failing, an ``OutputError``."""
    opened = _open(stream)
    with _writing():
        opened.write(text)
        opened.flush()


def drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (AttributeError, OSError, ValueError):
        pass


def _open(stream: Optional[T]) -> T:
    if stream is None:  # the process started with the descriptor closed (`>&-`)
        raise OutputError("standard output is closed")
    return stream


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    """A failed write becomes an ``OutputError``; a closed pipe stays itself."""
    try:
        yield
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: a closed file object
        raise OutputError(getattr(exc, "strerror", None) or str(exc)) from None
