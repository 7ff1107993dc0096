"""Compute a value once however many threads ask; threads that waited share its failure.

A lazy attribute (``lazy.cached_property``: 32 threads reading a fresh
``region`` send one request) and the session token (one token request for
every thread of a client) both need two things: one computation at a time,
the others waiting for its value; and, when it fails, the threads that
waited get that failure instead of each trying again in turn. Against a
silent IMDS each retry costs the full timeout, so trying in turn would
multiply the wait by the number of threads. A caller that comes later, not
having waited on the failure, tries afresh: nothing caches a failure.

The value itself lives where its owner keeps it (an instance ``__dict__``,
a token slot): ``current`` finds it, ``compute`` stores it. Callers read it
lock-free first, and reach ``Once.run`` only when it is not there.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional, Tuple, Type, TypeVar

T = TypeVar("T")

# What ``current()`` returns when there is no value yet (``None`` can be a value).
MISSING: Any = object()

Errors = Tuple[Type[BaseException], ...]


class Once:
    """One computation at a time of one value; the threads that waited share its failure.

    ``shared``: the exception types handed to the threads that waited (any
    other propagates in its own thread only, and is not recorded).
    """

    __slots__ = ("failure", "lock", "shared")

    def __init__(self, shared: Errors = (Exception,)) -> None:
        # Held while computing. Hold it to change the value consistently with a computation.
        self.lock = threading.Lock()
        # The last computation's error, until one succeeds. Set it to None
        # (holding ``lock``) to have the next caller try even if it waited.
        self.failure: Optional[BaseException] = None
        self.shared = shared

    def run(self, current: Callable[[], Any], compute: Callable[[], T]) -> T:
        """``current()`` unless it is ``MISSING``; else ``compute()``, which stores the value.

        Both run under ``lock``. A thread that waited for the lock while a
        computation failed raises that computation's exception (the same object).
        """
        failed_before = self.failure
        with self.lock:
            value = current()
            if value is not MISSING:
                return value  # type: ignore[no-any-return]
            failure = self.failure
            if failure is not None and failure is not failed_before:
                raise failure  # it failed while this thread waited for it
            try:
                value = compute()
            except self.shared as exc:
                self.failure = exc
                raise
            self.failure = None
            return value


class OncePerName:
    """A ``Once`` for each name, made on first use.

    Threads asking for one name wait for each other; threads asking for
    different names (two attributes, two tags) do not.
    """

    __slots__ = ("_guard", "_onces", "_shared")

    def __init__(self, shared: Errors = (Exception,)) -> None:
        self._onces: Dict[str, Once] = {}
        self._guard = threading.Lock()
        self._shared = shared

    def __getitem__(self, name: str) -> Once:
        once = self._onces.get(name)
        if once is None:
            with self._guard:
                once = self._onces.get(name)
                if once is None:
                    once = self._onces[name] = Once(self._shared)
        return once
