"""The top of the metadata tree: where every read of ``EC2Metadata`` goes.

``Root`` is ``EC2Metadata`` less its attributes (those, the schema, are
``model.py``'s): the settings it was given, the ``IMDSClient`` it makes from
them on first use, the URLs, and ``_read``, the one method every attribute's
body comes through, from the client or, for the snapshot and the watcher, from
bodies a pipelined fetch already gathered (``from_reader``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Type, TypeVar

from . import config
from .errors import ConfigError, IMDSError
from .lazy import LazyObject

if TYPE_CHECKING:  # pragma: no cover
    import requests
    import urllib3

    from .client import IMDSClient

# The body at a path under /latest/ (None: absent); raises what reading it raised.
Reader = Callable[[str], Optional[bytes]]
R = TypeVar("R", bound="Root")

META = "meta-data/"


class Root(LazyObject):
    """The settings, the client and the reads of ``EC2Metadata`` (see its docstring)."""

    def __init__(
        self,
        session: Optional[requests.Session] = None,
        *,
        endpoint: Optional[str] = None,
        endpoint_mode: Optional[str] = None,
        timeout: Optional[float] = None,
        attempts: Optional[int] = None,
        disabled: Optional[bool] = None,
        allow_imdsv1: Optional[bool] = None,
        token_ttl: Optional[int] = None,
        max_concurrency: Optional[int] = None,
        deadline: Optional[float] = None,
        client: Optional[IMDSClient] = None,
        pool_manager: Optional[urllib3.PoolManager] = None,
    ) -> None:
        super().__init__()
        if pool_manager is not None and session is not None:
            raise ConfigError("pass session= (requests) or pool_manager= (urllib3), not both")
        self._session: Any = session if pool_manager is None else pool_manager
        # The keywords above are the library's spelling of ``config.OPTIONS``;
        # they travel on as one mapping, validated by ``config.Settings.from_mapping``.
        given = locals()
        self._options: Dict[str, Any] = {name: given[name] for name in config.OPTIONS}
        if client is not None:
            chosen = [name for name, value in self._options.items() if value is not None]
            if session is not None or pool_manager is not None:
                chosen.insert(0, "session" if session is not None else "pool_manager")
            if chosen:
                raise ConfigError(
                    "{0}= goes to the client, not beside client= (which brings its own "
                    "settings and session): IMDSClient({0}=...)".format(chosen[0])
                )
        self._given_client = client
        self._client: Optional[IMDSClient] = client
        self._reader: Optional[Reader] = None

    @classmethod
    def from_reader(cls: Type[R], read: Reader, client: Optional[IMDSClient] = None) -> R:
        """The model over bodies already gathered: every read is ``read(path)``, not a request.

        How the snapshot and the watcher turn one pipelined fetch into values
        (``read`` raises what the fetch raised for a path). ``client`` is only
        for ``client`` and the URLs.
        """
        view = cls(client=client)
        view._reader = read
        return view

    def __repr__(self) -> str:
        if self._client is None:
            return "{}(unconnected)".format(type(self).__name__)
        return "{}({!r})".format(type(self).__name__, self._client)

    @property
    def client(self) -> IMDSClient:
        """The ``IMDSClient`` (token, retries, transport) behind this object."""
        client = self._client
        if client is None:
            with self._once["_client"].lock:  # one client, however many threads ask first
                if self._client is None:
                    self._client = self._new_client()
                client = self._client
        return client

    def _new_client(self) -> IMDSClient:
        # Imported here: the client pulls in socket, queue and threads,
        # which a program that never reads a value need not pay for.
        from .client import IMDSClient
        from .compat import Urllib3Transport, is_pool_manager

        if is_pool_manager(self._session):
            settings = config.Settings.from_mapping(self._options)
            transport = Urllib3Transport(settings.endpoint, self._session)
            return IMDSClient(settings=settings, transport=transport)
        return IMDSClient(
            session=self._session, settings=config.Settings.from_mapping(self._options)
        )

    @property
    def service_url(self) -> str:
        return self.client.settings.endpoint + "/latest/"

    @property
    def metadata_url(self) -> str:
        return self.service_url + META

    @property
    def dynamic_url(self) -> str:
        return self.service_url + "dynamic/"

    @property
    def userdata_url(self) -> str:
        return self.service_url + "user-data"

    def _path(self, item: str) -> str:
        return item

    def _read(self, item: str) -> Optional[bytes]:
        if self._reader is not None:
            return self._reader(item)
        client = self.client
        try:
            return client.get(item)
        except IMDSError as exc:
            raise self._error(exc) from None

    def _error(self, exc: IMDSError) -> IMDSError:
        """``exc``, also catchable as ec2-metadata's exception when the caller's library is used."""
        transport = self.client.transport
        if transport.library is None:
            return exc
        from .compat import as_library_error

        return as_library_error(exc, transport)

    def clear_all(self) -> None:
        """Forget every cached attribute and the session token.

        Settings taken from the environment are read again on next use.
        """
        super().clear_all()
        client = self._client
        if client is not None:
            client.clear_token()
            if self._given_client is None:
                client.close()
                self._client = None
