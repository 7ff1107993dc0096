"""Drop-in for ec2-metadata users: its exception types, and its 3.0 ``pool_manager``.

ec2-metadata 2.x raises ``requests`` exceptions (``raise_for_status()``), 3.0
``urllib3`` ones. Code written against it catches those. When the caller hands
us a ``requests.Session`` or a ``urllib3.PoolManager``, every error the model
raises is made an instance of both our class and the matching exception of
that library, so ``except IMDSHTTPError`` and ``except
requests.exceptions.HTTPError`` both work. Without one, the standard-library
transport raises only our own errors.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Type

from .errors import (
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    IMDSUnavailableError,
    TagsNotEnabledError,
    TokenError,
)
from .transport import Response, Transport

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


def flavoured(exc: IMDSError, transport: Transport) -> IMDSError:
    """``exc``, made catchable as the caller's HTTP library's exception too (see above)."""
    library = getattr(transport, "library", None)
    if library is None or isinstance(exc, _Flavoured):
        return exc
    base = _foreign_base(exc, library)
    if base is None:
        return exc
    key = (type(exc), base)
    cls = _classes.get(key)
    if cls is None:
        name = type(exc).__name__
        cls = type(name, (type(exc), base, _Flavoured), {"__module__": type(exc).__module__})
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


class _Flavoured:
    """Marks an error already made catchable as a foreign exception."""


class Urllib3Transport(Transport):
    """Requests through a caller's ``urllib3.PoolManager``, as ec2-metadata 3.0 takes one."""

    library = "urllib3"

    def __init__(self, base_url: str, pool_manager: Any) -> None:
        self._base = base_url.rstrip("/")
        self.pool_manager = pool_manager

    def __repr__(self) -> str:
        return "Urllib3Transport({})".format(self._base)

    def request(self, method: str, path: str, headers: Dict[str, str], timeout: float) -> Response:
        import urllib3

        try:
            raw = self.pool_manager.request(
                method,
                self._base + path,
                headers=headers,
                timeout=urllib3.Timeout(total=timeout),
                retries=False,  # the client retries, with back-off and a deadline
                redirect=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError too
            raise self._unreachable(method, path, exc) from None
        except urllib3.exceptions.TimeoutError:
            raise IMDSTimeoutError(
                "no answer from IMDS at {} within {:g}s ({} {})".format(
                    self._base, timeout, method, path
                )
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(method, path, exc) from None
        return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw.data)

    def _unreachable(self, method: str, path: str, exc: Exception) -> IMDSError:
        return IMDSUnavailableError(
            "cannot reach IMDS at {} ({} {}): {}".format(
                self._base, method, path, type(exc).__name__
            )
        )

    def close(self) -> None:
        """Leave the pool manager open: it is the caller's."""
