"""HTTP transports: move one request, know nothing of tokens or retries.

``StdlibTransport`` is the default: standard library only (it runs inside an
Ansible module payload and in Salt minions) and keeps one kept-alive
connection in a small pool. ``RequestsTransport`` wraps a caller's
``requests.Session`` so the seed's ``EC2Metadata(session=...)`` keeps working
and ``responses`` can stand in for IMDS in unit tests.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, NamedTuple

from .errors import IMDSTimeoutError, IMDSUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    import http.client

    import requests


# Idle kept-alive connections held for reuse; more than the default
# concurrency so a full gather never reconnects.
MAX_IDLE_CONNECTIONS = 16


class Response(NamedTuple):
    status: int
    headers: Dict[str, str]  # lower-cased names
    body: bytes


class Transport:
    """Sends one HTTP request to ``base_url + path``; raises only our errors."""

    def request(
        self, method: str, path: str, headers: Dict[str, str], timeout: float
    ) -> Response:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Drop pooled connections (they are re-opened on demand)."""


class StdlibTransport(Transport):
    def __init__(self, base_url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL: {!r}".format(base_url))
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "StdlibTransport({}://{}:{})".format(
            "https" if self._https else "http", self._host, self._port
        )

    def _acquire(self, timeout: float) -> http.client.HTTPConnection:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            import http.client

            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=timeout)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def request(self, method: str, path: str, headers: Dict[str, str], timeout: float) -> Response:
        import http.client
        import socket

        # A kept-alive connection the server has since closed fails on first
        # use; one silent reconnect is not a retry of the request's fate.
        for reuse in (True, False):
            conn = self._acquire(timeout)
            fresh = conn.sock is None
            try:
                conn.request(method, self._prefix + path, headers=headers)
                raw = conn.getresponse()
                body = raw.read()
            except socket.timeout:
                conn.close()
                raise IMDSTimeoutError(
                    "no answer from IMDS at {}:{} within {:g}s ({} {})".format(
                        self._host, self._port, timeout, method, path
                    )
                ) from None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                if reuse and not fresh:
                    self.close()  # its idle siblings are as stale as it was
                    continue
                raise IMDSUnavailableError(
                    "IMDS at {}:{} closed the connection ({} {}): {}".format(
                        self._host, self._port, method, path, type(exc).__name__
                    )
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise IMDSUnavailableError(
                    "cannot reach IMDS at {}:{} ({} {}): {}".format(
                        self._host, self._port, method, path, _describe(exc)
                    )
                ) from None
            if raw.will_close:
                conn.close()
            else:
                self._release(conn)
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, body)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            conns, self._idle = self._idle, []
        for conn in conns:
            conn.close()


class RequestsTransport(Transport):
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
        self.session.close()


def _describe(exc: Any) -> str:
    """A short reason without the nested repr noise of OSError subclasses."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text)
