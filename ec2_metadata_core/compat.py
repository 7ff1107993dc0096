"""Drop-in for ec2-metadata users: their ``requests.Session`` or urllib3 pool, and exceptions.

ec2-metadata 2.x takes a ``requests.Session``, 3.0 a ``urllib3.PoolManager``.
Handed one, the client sends through it (``RequestsTransport``,
``Urllib3Transport``: one blocking request each, on the scheduler's worker
threads, see ``client``); that is also how ``responses`` stands in for IMDS
in unit tests, which so run the scheduler every read goes through.

ec2-metadata 2.x raises ``requests`` exceptions (``raise_for_status()``), 3.0
``urllib3`` ones. Code written against it catches those. So on a caller's
library every error the model raises is made an instance of both our class
and the matching exception of that library, so ``except IMDSHTTPError`` and
``except requests.exceptions.HTTPError`` both work. Without one, the
standard-library transport raises only our own errors.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Type

from .bounds import MAX_BODY
from .config import split_endpoint
from .errors import (
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    IMDSUnavailableError,
    TagsNotEnabledError,
    TokenError,
)
from .transport import (
    BODY_TOO_LARGE,
    Job,
    Response,
    Transport,
    broken,
    timed_out,
    unreachable,
    why_unreachable,
)

if TYPE_CHECKING:  # pragma: no cover
    import requests

_classes: Dict[Tuple[Type[IMDSError], type], type] = {}


def is_pool_manager(value: Any) -> bool:
    """A ``urllib3.PoolManager`` (or ProxyManager) rather than a ``requests.Session``."""
    return hasattr(value, "connection_from_url")


def _status(exc: IMDSError) -> Optional[int]:
    """The HTTP status behind an error, if an HTTP answer caused it."""
    if isinstance(exc, TagsNotEnabledError):
        return 404
    if isinstance(exc, (IMDSHTTPError, TokenError)):
        return exc.status
    return None


def _foreign_base(exc: IMDSError, library: str) -> Optional[type]:
    status = _status(exc)
    if library == "requests":
        import requests

        if status is not None:
            return requests.exceptions.HTTPError
        if isinstance(exc, IMDSTimeoutError):
            return requests.exceptions.Timeout
        if isinstance(exc, IMDSUnavailableError):
            return requests.exceptions.ConnectionError
        return None
    import urllib3

    if isinstance(exc, IMDSTimeoutError) and status is None:
        return urllib3.exceptions.TimeoutError
    if status is not None or isinstance(exc, IMDSUnavailableError):
        return urllib3.exceptions.HTTPError
    return None


def as_library_error(exc: IMDSError, transport: Transport) -> IMDSError:
    """``exc``, made catchable as the caller's HTTP library's exception too (see above)."""
    library = getattr(transport, "library", None)
    if library is None or isinstance(exc, _LibraryTyped):
        return exc
    base = _foreign_base(exc, library)
    if base is None:
        return exc
    key = (type(exc), base)
    cls = _classes.get(key)
    if cls is None:
        name = type(exc).__name__
        cls = type(name, (type(exc), base, _LibraryTyped), {"__module__": type(exc).__module__})
        _classes[key] = cls
    new: Any = base.__new__(cls, *exc.args)
    new.__dict__.update(exc.__dict__)
    new.args = exc.args
    if library == "requests":
        import requests

        response = None
        status = _status(exc)
        if status is not None:
            response = requests.Response()
            response.status_code = status
            response.url = getattr(transport, "_base", "") + getattr(exc, "path", "")
        new.response = response
        new.request = None
    return new  # type: ignore[no-any-return]


class _LibraryTyped:
    """Marks an error already made catchable as a foreign exception."""


class _CallerTransport(Transport):
    """Sends through an HTTP library's object the caller owns (and closes: ``close`` leaves it)."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        endpoint = split_endpoint(self._base)  # ValueError unless a base URL
        self._https = endpoint.https
        self.where = endpoint.where()  # how messages name the endpoint, as wire's do

    def __repr__(self) -> str:
        return "{}({})".format(type(self).__name__, self._base)

    def _timed_out(self, job: Job, timeout: float) -> IMDSError:
        return timed_out(self.where, False, timeout, job)

    def _unreachable(self, exc: Exception) -> IMDSError:
        """The failure in the words the standard-library transport uses (``unreachable``)."""
        cause = _socket_error(exc)
        why = why_unreachable(cause, self._https) if cause is not None else type(exc).__name__
        return unreachable(self.where, why)

    def close(self) -> None:
        """Leave the caller's session or pool manager open: it may serve other code."""


class RequestsTransport(_CallerTransport):
    """Requests through a caller's ``requests.Session``, as ec2-metadata 2.x takes one."""

    library = "requests"

    def __init__(self, base_url: str, session: requests.Session) -> None:
        super().__init__(base_url)
        self.session = session
        self.concurrency = _pool_size(
            lambda: session.get_adapter(self._base + "/")._pool_maxsize  # type: ignore[attr-defined]
        )

    def send(self, job: Job, timeout: float) -> Response:
        import requests
        import urllib3  # what reading a streamed body raises

        started = time.monotonic()
        try:
            raw = self.session.request(
                job.method,
                self._base + job.path,
                headers={**job.headers, "Accept-Encoding": "identity"},
                timeout=timeout,
                allow_redirects=False,
                stream=True,  # the body is read within the bounds (``_body``)
            )
            try:
                body = _body(raw.raw, self, job, timeout, started)
            finally:
                raw.close()
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise self._timed_out(job, timeout) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise self._unreachable(exc) from None
        return Response(raw.status_code, {k.lower(): v for k, v in raw.headers.items()}, body)


class Urllib3Transport(_CallerTransport):
    """Requests through a caller's ``urllib3.PoolManager``, as ec2-metadata 3.0 takes one."""

    library = "urllib3"

    def __init__(self, base_url: str, pool_manager: Any) -> None:
        super().__init__(base_url)
        self.pool_manager = pool_manager
        self.concurrency = _pool_size(lambda: pool_manager.connection_pool_kw.get("maxsize", 1))

    def send(self, job: Job, timeout: float) -> Response:
        import urllib3

        started = time.monotonic()
        try:
            raw = self.pool_manager.request(
                job.method,
                self._base + job.path,
                headers={**job.headers, "Accept-Encoding": "identity"},
                timeout=urllib3.Timeout(total=timeout),
                retries=False,  # the client retries, with back-off and a deadline
                redirect=False,
                preload_content=False,  # the body is read within the bounds (``_body``)
            )
            try:
                body = _body(raw, self, job, timeout, started)
            except BaseException:
                raw.close()  # a body left unread: the connection goes, not back to the pool
                raise
            raw.release_conn()
        except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError too
            raise self._unreachable(exc) from None
        except urllib3.exceptions.TimeoutError:
            raise self._timed_out(job, timeout) from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc) from None
        return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, body)


def _body(raw: Any, sender: _CallerTransport, job: Job, timeout: float, started: float) -> bytes:
    """The body of urllib3's ``raw`` answer, within what the standard-library transport allows.

    As the bytes came (no gzip or deflate decoded: IMDS sends none, and a
    bomb inflates), at most ``MAX_BODY`` of them, and within ``timeout`` of
    ``started`` in all: the caller's library bounds each read, not the
    whole, and a body sent a byte at a time would keep it reading for ever.
    ``read1`` returns what one read brings: urllib3's own (2.3 and later),
    else that of the ``http.client`` answer below it (which decodes nothing).
    """
    if hasattr(raw, "read1"):

        def read(size: int) -> bytes:
            return raw.read1(size, decode_content=False)  # type: ignore[no-any-return]

    else:  # pragma: no cover - urllib3 before 2.3
        read = raw._fp.read1
    chunks: List[bytes] = []
    total = 0
    while True:
        if time.monotonic() - started > timeout:
            raise sender._timed_out(job, timeout)
        chunk = read(65536)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > MAX_BODY:
            raise broken(sender.where, "sent an unusable answer", job, BODY_TOO_LARGE)
        chunks.append(chunk)


def _pool_size(read: Callable[[], Any]) -> int:
    """How many connections the caller's pool keeps per host (1 if it cannot say).

    No more requests than that go out at once: urllib3 would warn about, and
    drop, every connection beyond (a PoolManager keeps 1, a Session 10).
    """
    try:
        return max(1, int(read()))
    except Exception:  # a pool we cannot read (a stand-in, another library): one at a time
        return 1


def _socket_error(exc: BaseException) -> Optional[OSError]:
    """The socket's own error (ECONNREFUSED, ...) under requests' and urllib3's wrappers."""
    seen = set()
    todo: List[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno and current.strerror:
            return current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        todo.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return None
