"""Blocking sends on worker threads: how a caller's ``requests``/urllib3 transport joins a pass.

A caller's HTTP library (``compat``) sends one request at a time and blocks
until it ends. The scheduler (``client``) keeps many in flight all the same
by running each send on a thread of its own (``Threaded``, the same
``Sender`` face as ``wire.Engine``), and reads their outcomes from one
queue. The standard-library transport needs none of this.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import List, Optional, Tuple, Union

from .errors import IMDSError
from .transport import Done, Job, Response, SendOutcome, Transport

# Seconds a worker thread waits for work before it ends.
WORKER_IDLE = 30.0
# What a worker hands back: a Done, but for the outcome an exception other
# than an IMDSError in its place (a bug, raised in the caller's thread).
_Returned = Tuple[Job, Union[SendOutcome, Exception], float]
# What a worker runs: transport, job, timeout, sent at, where the outcome goes.
_Task = Tuple[Transport, Job, float, float, "queue.SimpleQueue[_Returned]"]


class _Workers:
    """The threads that run blocking sends, shared by every client of the process.

    Created on demand (never more than the sends in flight at once) and kept
    for the next pass, up to ``WORKER_IDLE`` seconds without work: a watcher's
    polls reuse them, and a process that gathered once is soon left without
    threads (``fork`` warns about them on Python 3.12). A forked child (a Salt
    job) starts afresh: threads do not survive ``fork``, and a lock one of
    them held would never be released.
    """

    def __init__(self) -> None:
        self._forked()

    def _forked(self) -> None:
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._pid = os.getpid()

    def submit(
        self,
        transport: Transport,
        job: Job,
        timeout: float,
        now: float,
        done: queue.SimpleQueue[_Returned],
    ) -> None:
        if self._pid != os.getpid():  # where os.register_at_fork is missing
            self._forked()
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._tasks.put((transport, job, timeout, now, done))
        if spawn:
            threading.Thread(target=self._work, name="imds-send", daemon=True).start()

    def _work(self) -> None:
        tasks, lock = self._tasks, self._lock
        while True:
            try:
                transport, job, timeout, sent_at, done = tasks.get(timeout=WORKER_IDLE)
            except queue.Empty:
                with lock:
                    if self._idle > 0:  # else a task is on its way to this thread
                        self._idle -= 1
                        return
                continue
            outcome: Union[SendOutcome, Exception]
            try:
                outcome = transport.send(job, timeout)
            except Exception as exc:  # an IMDSError, or a bug the caller's thread re-raises
                outcome = exc
            with lock:
                self._idle += 1
            done.put((job, outcome, sent_at))


_workers = _Workers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_workers._forked)


class Threaded:
    """A blocking transport's sends on the worker threads: a ``Sender``, as ``wire.Engine`` is."""

    def __init__(self, transport: Transport, timeout: float) -> None:
        self.transport = transport
        self.timeout = timeout
        self.done: queue.SimpleQueue[_Returned] = queue.SimpleQueue()
        self.out = 0

    def submit(self, job: Job, now: float, until: Optional[float] = None) -> None:
        timeout = self.timeout if until is None else max(0.001, min(self.timeout, until - now))
        _workers.submit(self.transport, job, timeout, now, self.done)
        self.out += 1

    def collect(self, wait: Optional[float]) -> List[Done]:
        try:
            first = self.done.get() if wait is None else self.done.get(timeout=max(0.0, wait))
        except queue.Empty:
            return []
        returned = [first]
        while True:
            try:
                returned.append(self.done.get_nowait())
            except queue.Empty:
                break
        self.out -= len(returned)
        finished: List[Done] = []
        for job, outcome, sent_at in returned:
            if not isinstance(outcome, (Response, IMDSError)):
                self.close()
                raise outcome  # a bug in the transport: the caller's thread sees it
            finished.append((job, outcome, sent_at))
        return finished

    def close(self) -> None:
        while self.out:  # sends still out end quietly (their own timeout bounds them)
            self.done.get()
            self.out -= 1
