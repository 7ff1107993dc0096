"""HTTP transports: move requests, know nothing of tokens or retries.

``StdlibTransport`` is the default: standard library only (it runs inside an
Ansible module payload and in Salt minions), built on ``wire``: kept-alive
sockets and many requests in flight from one thread. ``RequestsTransport``
wraps a caller's ``requests.Session`` so the seed's ``EC2Metadata(session=...)``
keeps working and ``responses`` can stand in for IMDS in unit tests; it sends
one request at a time.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING, Deque, Dict, Iterable, Optional

from . import wire
from .errors import IMDSError, IMDSTimeoutError, IMDSUnavailableError
from .wire import Job, OnDone, Prepare, Response

if TYPE_CHECKING:  # pragma: no cover
    import requests

__all__ = ["Job", "RequestsTransport", "Response", "StdlibTransport", "Transport"]


class Transport:
    """Sends HTTP requests to ``base_url + path``; raises only our errors."""

    # The caller's HTTP library, whose exceptions ec2-metadata users catch (see compat).
    library: Optional[str] = None

    def request(
        self, method: str, path: str, headers: Dict[str, str], timeout: float
    ) -> Response:  # pragma: no cover - interface
        raise NotImplementedError

    def exchange(
        self,
        jobs: Iterable[Job],
        timeout: float,
        limit: int,
        on_done: OnDone,
        prepare: Optional[Prepare] = None,
    ) -> None:
        """Run ``jobs``; ``on_done`` sees each outcome and may queue more (see ``wire``).

        This default sends one request at a time; ``limit`` is a ceiling, not a promise.
        """
        queue: Deque[Job] = deque(jobs)
        while queue:
            job = queue.popleft()
            pause = job.not_before - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                if prepare is not None:
                    prepare(job)
                outcome: wire.Outcome = self.request(job.method, job.path, job.headers, timeout)
            except IMDSError as exc:
                outcome = exc
            queue.extend(on_done(job, outcome))

    def close(self) -> None:
        """Drop pooled connections (they are re-opened on demand)."""


class StdlibTransport(Transport):
    def __init__(self, base_url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL: {!r}".format(base_url))
        https = parts.scheme == "https"
        self.pool = wire.Pool(parts.hostname, parts.port or (443 if https else 80), https)
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return "StdlibTransport({}://{})".format(
            "https" if self.pool.https else "http", self.pool.host_header
        )

    def request(self, method: str, path: str, headers: Dict[str, str], timeout: float) -> Response:
        result = []

        def keep(job: Job, outcome: wire.Outcome) -> Iterable[Job]:
            result.append(outcome)
            return ()

        self.exchange([Job(None, method, path, headers)], timeout, 1, keep)
        outcome = result[0]
        if isinstance(outcome, IMDSError):
            raise outcome
        return outcome

    def exchange(
        self,
        jobs: Iterable[Job],
        timeout: float,
        limit: int,
        on_done: OnDone,
        prepare: Optional[Prepare] = None,
    ) -> None:
        if self._pid != os.getpid():
            # A forked child (a Salt job, say) inherited the parent's idle
            # sockets: using them would interleave both processes' answers.
            # Closing the child's copies leaves the parent's connections up.
            self._pid = os.getpid()
            old = self.pool
            self.pool = wire.Pool(old.host, old.port, old.https)
            old.close()
        wire.exchange(self.pool, jobs, timeout, limit, on_done, prepare)

    def close(self) -> None:
        self.pool.close()


class RequestsTransport(Transport):
    library = "requests"

    def __init__(self, base_url: str, session: requests.Session) -> None:
        self._base = base_url.rstrip("/")
        self.session = session

    def __repr__(self) -> str:
        return "RequestsTransport({})".format(self._base)

    def request(self, method: str, path: str, headers: Dict[str, str], timeout: float) -> Response:
        import requests

        try:
            raw = self.session.request(
                method,
                self._base + path,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise IMDSTimeoutError(
                "no answer from IMDS at {} within {:g}s ({} {})".format(
                    self._base, timeout, method, path
                )
            ) from None
        except requests.RequestException as exc:
            raise IMDSUnavailableError(
                "cannot reach IMDS at {} ({} {}): {}".format(
                    self._base, method, path, type(exc).__name__
                )
            ) from None
        return Response(
            raw.status_code, {k.lower(): v for k, v in raw.headers.items()}, raw.content
        )

    def close(self) -> None:
        """Leave the session open: it is the caller's, and may serve other code."""
