"""The metadata model: ``EC2Metadata`` and friends, the seed's API and the rest of IMDS.

Attribute names, types, ``None``/``[]`` for absent values and caching rules
follow the ec2-metadata library (see the project README), so code written
against it runs unchanged. Values that change while the instance runs are
uncached; everything else caches on first access (``del`` one attribute or
call ``clear_all()`` to refetch), computed once however many threads ask.

Each metadata attribute declares what it reads (see "declarations" below):
``ec2_metadata.region`` is the identity document's ``region``, read through
``_read`` -> ``IMDSClient.get`` and its scheduler (``client.py``) -> the
standard-library transport (``wire.py``, or ``compat.py`` on a caller's
``requests``/urllib3). The same declarations give the snapshot its keys and
its one pipelined gather plan (``plan.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import types
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Iterator,
    List,
    Literal,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
    TypedDict,
    TypeVar,
    overload,
)
from urllib.parse import quote

from . import config, parse
from .errors import (
    ConfigError,
    IMDSError,
    MalformedResponseError,
    PathNotFoundError,
    TagsNotEnabledError,
)

# What a URL path carries as it is (RFC 3986 pchar). Every character a tag
# key may hold (letters, digits, + - = . , _ : @) is among them, and IMDS is
# not known to percent-decode paths: such names must travel literally.
_PATH_CHARACTERS = "!$&'()*+,;=:@"


def segment(name: str) -> str:
    """``name`` (from a listing) as a path segment: percent-encode only what a path cannot hold."""
    return quote(name, safe=_PATH_CHARACTERS)


if TYPE_CHECKING:  # pragma: no cover
    import requests
    import urllib3

    from .client import IMDSClient

Reader = Callable[[str], Optional[bytes]]

_META = "meta-data/"
_MACS = "meta-data/network/interfaces/macs/"
_IDENTITY = "dynamic/instance-identity/document"
_IAM_INFO = "meta-data/iam/info"
_BLOCK_DEVICE_MAPPING = "meta-data/block-device-mapping/"
_ROLES_DIR = "meta-data/iam/security-credentials/"

# -- declarations ------------------------------------------------------------
#
# Every metadata attribute declares what it reads: a path (``Leaf``), a
# listing whose entries name the next paths (``Listing``), or the attributes
# it is derived from (``sources``). ``declared(cls)`` is that table; the
# gather plan (``plan.py``), the snapshot's keys and the watcher's paths are
# read off it, so a path is written once, next to the attribute it feeds.

T = TypeVar("T")
D = TypeVar("D")  # a descriptor: on the class, it is itself
_MISSING: Any = object()
Parser = Callable[[str, Optional[bytes]], T]


class Listing(NamedTuple):
    """A path whose body names more paths to read.

    ``item`` is under the declaring object's directory (see ``_path``).
    ``entries(path, body)`` is the names the body lists (``[]`` for 404); it is
    a pure function of the body, so the gather runs it on each listing as it
    arrives. Each name is read as ``child(name)`` (an item under the same
    directory) or, with ``each``, is the directory ``item + name + "/"`` of an
    object of that class, whose own declarations apply below it.
    """

    item: str
    entries: Callable[[str, Optional[bytes]], List[str]]
    child: Optional[Callable[[str], str]] = None
    each: Optional[type] = None

    def named(self, name: str) -> str:
        """The item a listed ``name`` stands for (with ``each``: the directory)."""
        if self.child is None:
            return "{}{}/".format(self.item, name)
        return self.child(name)


class Declaration(NamedTuple):
    """What one metadata attribute reads; see ``declared``."""

    reads: Tuple[str, ...] = ()  # items, under the object's directory
    listings: Tuple[Listing, ...] = ()
    sources: Tuple[str, ...] = ()  # attributes of the same class it is computed from
    in_snapshot: bool = True  # False: metadata another key already holds


class LazyObject:
    """Base of objects whose attributes fetch from IMDS on first access."""

    def __init__(self) -> None:
        self._locks: Dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # attribute -> the last failed computation's error, until one succeeds
        self._failures: Dict[str, BaseException] = {}

    def _read(self, item: str) -> Optional[bytes]:  # pragma: no cover - interface
        """The body at this object's path ``item``; ``None`` if absent."""
        raise NotImplementedError

    def _path(self, item: str) -> str:  # pragma: no cover - interface
        """The path under ``/latest/`` that ``item`` names for this object."""
        raise NotImplementedError

    def _lock_for(self, name: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(name)
            if lock is None:
                lock = self._locks[name] = threading.Lock()
            return lock

    def clear_all(self) -> None:
        """Forget every cached attribute; the next access fetches again."""
        for key in tuple(self.__dict__):
            if isinstance(getattr(type(self), key, None), cached_property):
                self.__dict__.pop(key, None)


class cached_property(Generic[T]):
    """``functools.cached_property`` (``del obj.attr`` clears) that computes once under threads.

    Python 3.12 dropped the lock ``functools.cached_property`` used to take,
    and a fresh object read by 32 threads must still fetch each path once.
    """

    def __init__(self, func: Callable[[Any], T], declaration: Optional[Declaration] = None) -> None:
        self.func = func
        self.__doc__ = func.__doc__
        # Set on metadata attributes: what they read (see ``declared``).
        self.declaration = declaration
        self.attrname = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    @overload
    def __get__(self: D, obj: None, owner: Optional[type] = None) -> D: ...

    @overload
    def __get__(self, obj: LazyObject, owner: Optional[type] = None) -> T: ...

    def __get__(self, obj: Optional[LazyObject], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        cache = obj.__dict__
        name = self.attrname
        # get(), not `in` then [], so a concurrent del cannot raise KeyError here
        value = cache.get(name, _MISSING)
        if value is not _MISSING:
            return value
        failed_before = obj._failures.get(name)
        with obj._lock_for(name):
            value = cache.get(name, _MISSING)
            if value is not _MISSING:
                return value
            # Threads that queued while a computation failed share its error:
            # against a silent IMDS, each one retrying in turn would multiply
            # the wait by the number of threads.
            failure = obj._failures.get(name)
            if failure is not None and failure is not failed_before:
                raise failure
            try:
                value = self.func(obj)
            except Exception as exc:
                obj._failures[name] = exc
                raise
            obj._failures.pop(name, None)
            cache[name] = value
            return value


class uncached_property(Generic[T]):
    """An attribute computed on every access (values that change while the instance runs)."""

    def __init__(self, func: Callable[[Any], T], declaration: Optional[Declaration] = None) -> None:
        self.func = func
        self.__doc__ = func.__doc__
        # Set on metadata attributes: what they read (see ``declared``).
        self.declaration = declaration

    @overload
    def __get__(self: D, obj: None, owner: Optional[type] = None) -> D: ...

    @overload
    def __get__(self, obj: LazyObject, owner: Optional[type] = None) -> T: ...

    def __get__(self, obj: Optional[LazyObject], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        return self.func(obj)

    def __set__(self, obj: LazyObject, value: Any) -> None:
        # Read-only like ``property``: a value set on the object would hide the live one.
        raise AttributeError("can't set attribute")


def _parsed(item: str, parse: Parser[T]) -> Callable[[LazyObject], T]:
    def read(obj: LazyObject) -> T:
        return parse(obj._path(item), obj._read(item))

    return read


class Leaf(cached_property[T]):
    """A cached attribute that is the path ``item`` parsed by ``parse``."""

    def __init__(self, item: str, parse: Parser[T], doc: str, in_snapshot: bool = True) -> None:
        super().__init__(_parsed(item, parse), Declaration((item,), in_snapshot=in_snapshot))
        self.item = item
        self.parse = parse
        self.__doc__ = doc


class UncachedLeaf(uncached_property[T]):
    """The path ``item`` parsed by ``parse``, fetched on every access."""

    def __init__(self, item: str, parse: Parser[T], doc: str) -> None:
        super().__init__(_parsed(item, parse), Declaration((item,)))
        self.item = item
        self.parse = parse
        self.__doc__ = doc


def _declaration(listing: Optional[Listing], sources: Tuple[str, ...]) -> Declaration:
    if listing is None:
        return Declaration(sources=sources)
    return Declaration(reads=(listing.item,), listings=(listing,), sources=sources)


def cached(
    listing: Optional[Listing] = None, sources: Tuple[str, ...] = ()
) -> Callable[[Callable[[Any], T]], cached_property[T]]:
    """Declare a cached attribute computed from ``listing`` and/or the attributes ``sources``."""
    declaration = _declaration(listing, sources)
    return lambda func: cached_property(func, declaration)


def uncached(
    listing: Optional[Listing] = None, sources: Tuple[str, ...] = ()
) -> Callable[[Callable[[Any], T]], uncached_property[T]]:
    """Declare an uncached attribute computed from ``listing`` and/or the attributes ``sources``."""
    declaration = _declaration(listing, sources)
    return lambda func: uncached_property(func, declaration)


@functools.lru_cache(maxsize=None)  # a class's declarations are fixed once it is defined
def declared(cls: type) -> Mapping[str, Declaration]:
    """Name -> declaration of every metadata attribute of ``cls``, in definition order."""
    found: Dict[str, Declaration] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            declaration = getattr(value, "declaration", None)
            if isinstance(declaration, Declaration):
                found[name] = declaration
    return types.MappingProxyType(found)


class IamInfoDict(TypedDict):
    InstanceProfileArn: str
    InstanceProfileId: str
    LastUpdated: str


class IamSecurityCredentialsDict(TypedDict):
    LastUpdated: str
    Type: str
    AccessKeyId: str
    SecretAccessKey: str
    Token: str
    Expiration: str


class InstanceIdentityDocumentDict(TypedDict):
    accountId: str
    architecture: Literal["i386", "x86_64", "arm64"]
    availabilityZone: str
    billingProducts: Optional[List[str]]
    marketplaceProductCodes: Optional[List[str]]
    imageId: str
    instanceId: str
    instanceType: str
    kernelId: Optional[str]
    pendingTime: str
    privateIp: str
    ramdiskId: Optional[str]
    region: str
    version: str


class SpotInstanceAction:
    """An action about to happen to a spot instance."""

    def __init__(
        self, action: Literal["hibernate", "stop", "terminate"], time: dt.datetime
    ) -> None:
        self.action = action
        self.time = time

    def __repr__(self) -> str:
        return "SpotInstanceAction(action={!r}, time={!r})".format(self.action, self.time)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpotInstanceAction) and (self.action, self.time) == (
            other.action,
            other.time,
        )

    __hash__ = None  # type: ignore[assignment]


def _spot_action(path: str, body: Optional[bytes]) -> Optional[SpotInstanceAction]:
    document = parse.optional_json_object(path, body)
    if document is None:
        return None
    action = document.get("action")
    if action not in ("hibernate", "stop", "terminate"):
        raise MalformedResponseError(path, "spot action")
    return SpotInstanceAction(action, parse.timestamp(path, document.get("time")))


def _field(path: str, document: Mapping[str, Any], key: str) -> str:
    """A string the document must hold: a missing or odd one is malformed, not a KeyError."""
    value = document.get(key)
    if not isinstance(value, str):
        raise MalformedResponseError(path, "JSON object with a string {!r}".format(key))
    return value


def _iam_info(path: str, body: Optional[bytes]) -> Optional[IamInfoDict]:
    return parse.optional_json_object(path, body)  # type: ignore[return-value]


def _identity_document(path: str, body: Optional[bytes]) -> InstanceIdentityDocumentDict:
    document = parse.json_document(path, body)
    if not isinstance(document, dict):
        raise MalformedResponseError(path, "JSON object")
    return document  # type: ignore[return-value]


def _under(base: str) -> Callable[[str], str]:
    """A listed name -> the item ``base`` + the name as a path segment."""

    def item(name: str) -> str:
        return base + segment(name)

    return item


class InstanceTags(Mapping[str, str]):
    """Tag name -> value; names come from one listing, values are fetched on demand."""

    LISTING = "meta-data/tags/instance/"

    def __init__(self, names: List[str], parent: EC2Metadata) -> None:
        self._map: Dict[str, Optional[str]] = dict.fromkeys(names)
        self.parent = parent
        # One lock a name, so threads reading one tag fetch it once, and
        # threads reading different tags do not wait for each other.
        self._locks: Dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @classmethod
    def path(cls, name: str) -> str:
        return cls.LISTING + segment(name)

    def __getitem__(self, name: str) -> str:
        value = self._map[name]
        if value is None:
            with self._locks_guard:
                lock = self._locks.setdefault(name, threading.Lock())
            with lock:
                value = self._map[name]
                if value is None:
                    path = self.path(name)
                    value = parse.text(path, self.parent._read(path))
                    self._map[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __contains__(self, name: object) -> bool:
        return name in self._map  # named by the listing; no read needed

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return "InstanceTags({!r})".format(list(self._map))

    def present(self) -> Dict[str, str]:
        """Every tag with its value, less any the listing named that then answered 404.

        Listing then reading is not atomic: a tag removed in between is gone,
        not a failure (any other error still raises).
        """
        found = {}
        for name in self._map:
            try:
                found[name] = self[name]
            except PathNotFoundError:
                continue
        return found


class _Child(LazyObject):
    """An object under EC2Metadata, named by one value, reading through its parent.

    Its directory is ``LISTING`` + its name + ``/``: the listing that names
    it declares ``each=`` its class. Equal when of one class, one name and one
    parent, like the seed's objects.
    """

    LISTING = ""

    def __init__(self, parent: Optional[EC2Metadata]) -> None:
        super().__init__()
        self.parent = _default() if parent is None else parent

    def _name(self) -> object:  # pragma: no cover - interface
        raise NotImplementedError

    def _path(self, item: str) -> str:
        return "{}{}/{}".format(self.LISTING, self._name(), item)

    def _read(self, item: str) -> Optional[bytes]:
        return self.parent._read(self._path(item))

    def __repr__(self) -> str:
        return "{}({!r})".format(type(self).__name__, self._name())

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self._name() == other._name()
            and self.parent is other.parent
        )

    __hash__ = None  # type: ignore[assignment]


# Each public IPv4 of an interface -> the private IPs it maps to.
_ASSOCIATIONS = Listing("public-ipv4s", parse.names, child=_under("ipv4-associations/"))


class NetworkInterface(_Child):
    """One network interface, as listed in ``EC2Metadata.network_interfaces``."""

    LISTING = _MACS

    def __init__(self, mac: str, parent: Optional[EC2Metadata] = None) -> None:
        super().__init__(parent)
        self.mac = mac

    def _name(self) -> str:
        return self.mac

    device_number = Leaf("device-number", parse.integer, "The device number, e.g. 0.")
    interface_id = Leaf("interface-id", parse.text, "The ENI ID, e.g. 'eni-12345'.")
    ipv4_prefix = Leaf("ipv4-prefix", parse.lines, "IPv4 prefixes delegated to the interface.")
    ipv6_prefix = Leaf("ipv6-prefix", parse.lines, "IPv6 prefixes delegated to the interface.")
    ipv6s = Leaf("ipv6s", parse.lines, "The interface's IPv6 addresses; [] if none.")
    network_card_index = Leaf(
        "network-card-index", parse.optional_integer, "The network card index, or None."
    )
    owner_id = Leaf("owner-id", parse.text, "The AWS account ID of the interface's owner.")
    private_hostname = Leaf("local-hostname", parse.text, "The interface's private hostname.")
    private_ipv4s = Leaf("local-ipv4s", parse.lines, "The interface's private IPv4 addresses.")
    public_hostname = Leaf(
        "public-hostname", parse.optional_text, "The interface's public DNS name, or None."
    )
    public_ipv4s = Leaf(
        "public-ipv4s", parse.lines, "The public (Elastic) IPv4 addresses; [] if none."
    )
    security_groups = Leaf(
        "security-groups", parse.lines, "Names of the interface's security groups."
    )
    security_group_ids = Leaf(
        "security-group-ids", parse.lines, "IDs of the interface's security groups."
    )
    subnet_id = Leaf("subnet-id", parse.text, "The ID of the interface's subnet.")
    subnet_ipv4_cidr_block = Leaf(
        "subnet-ipv4-cidr-block", parse.optional_text, "The subnet's IPv4 CIDR block, or None."
    )
    subnet_ipv6_cidr_blocks = Leaf(
        "subnet-ipv6-cidr-blocks", parse.lines, "The subnet's IPv6 CIDR blocks; [] if none."
    )
    vpc_id = Leaf("vpc-id", parse.text, "The ID of the interface's VPC.")
    vpc_ipv4_cidr_block = Leaf(
        "vpc-ipv4-cidr-block", parse.optional_text, "The VPC's primary IPv4 CIDR block, or None."
    )
    vpc_ipv4_cidr_blocks = Leaf(
        "vpc-ipv4-cidr-blocks", parse.lines, "The VPC's IPv4 CIDR blocks; [] if none."
    )
    vpc_ipv6_cidr_blocks = Leaf(
        "vpc-ipv6-cidr-blocks", parse.lines, "The VPC's IPv6 CIDR blocks; [] if none."
    )

    @cached(listing=_ASSOCIATIONS)
    def ipv4_associations(self) -> Dict[str, List[str]]:
        """Public IP -> the private IPs it maps to, for each public IP of the interface."""
        # The addresses name paths: each must be a plain name.
        names = parse.plain_names(self._path(_ASSOCIATIONS.item), self.public_ipv4s)
        return _children(self, _ASSOCIATIONS, names, parse.lines)


class PublicKey(_Child):
    """A public key from ``EC2Metadata.public_keys``."""

    LISTING = "meta-data/public-keys/"

    def __init__(self, index: int, parent: Optional[EC2Metadata] = None) -> None:
        super().__init__(parent)
        self.index = index

    def _name(self) -> int:
        return self.index

    openssh_key = Leaf("openssh-key", parse.optional_text, "The key in OpenSSH format, or None.")


def _children(
    obj: LazyObject, listing: Listing, names: List[str], parse_child: Parser[T]
) -> Dict[str, T]:
    """Name -> the value of ``listing.child(name)`` under ``obj``, for each listed name."""
    found = {}
    for name in names:
        item = listing.named(name)
        found[name] = parse_child(obj._path(item), obj._read(item))
    return found


def _public_keys(path: str, body: Optional[bytes]) -> List[Tuple[int, str]]:
    """``(index, name)`` of each ``INDEX=NAME`` line of the public-keys listing."""
    keys = []
    for line in parse.lines(path, body):
        index, sep, name = line.partition("=")
        if not sep or not (index.isascii() and index.isdigit()):  # int() fails on "²"
            raise MalformedResponseError(path, "INDEX=NAME listing")
        keys.append((int(index), name))
    return keys


def _first(path: str, body: Optional[bytes]) -> List[str]:
    """The first line of a listing: the role whose credentials the instance has."""
    return parse.names(path, body)[:1]


# The listings of EC2Metadata (items are paths: its directory is /latest/).
_INTERFACES = Listing(NetworkInterface.LISTING, parse.names, each=NetworkInterface)
_KEYS = Listing(
    PublicKey.LISTING,
    lambda path, body: [str(index) for index, name in _public_keys(path, body)],
    each=PublicKey,
)
_TAGS = Listing(InstanceTags.LISTING, parse.names, child=InstanceTags.path)
_block_device = _under(_BLOCK_DEVICE_MAPPING)
_role_credentials = _under(_ROLES_DIR)
_BLOCK_DEVICES = Listing(_BLOCK_DEVICE_MAPPING, parse.names, child=_block_device)
_ROLES = Listing(_ROLES_DIR, _first, child=_role_credentials)


def _category(entry: str) -> str:
    return _META + entry  # as listed: the service names these, not a tag's owner


# The categories the service lists: a full snapshot also reads those the model does not know.
CATEGORIES = Listing(_META, parse.entries, child=_category)

# Public attributes of EC2Metadata that are not metadata (and so no snapshot key).
PLUMBING = frozenset(
    (
        "client",
        "service_url",
        "metadata_url",
        "dynamic_url",
        "userdata_url",
        "clear_all",
        "from_reader",
        "role_credentials_path",
        "block_device_path",
    )
)


class EC2Metadata(LazyObject):
    """The data of the EC2 metadata service, one attribute a value.

    ``session``, if given, is the ``requests.Session`` every request goes
    through; ``pool_manager`` (or a ``urllib3.PoolManager`` as ``session``, as
    ec2-metadata 3.0 takes it) routes them through urllib3 instead. With either,
    errors are also the exceptions that library raises (see ``compat``). The
    keyword arguments override the AWS settings read from the environment and
    ``~/.aws/config`` (see ``config.resolve``); they are read on first use, so
    the ``ec2_metadata`` singleton follows the environment the program has when
    it first reads a value. ``client`` brings its own settings and session:
    giving either beside it is a ``ConfigError``, not silently ignored.
    """

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
    def from_reader(cls, read: Reader, client: Optional[IMDSClient] = None) -> EC2Metadata:
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
            return "EC2Metadata(unconnected)"
        return "EC2Metadata({!r})".format(self._client)

    @property
    def client(self) -> IMDSClient:
        """The ``IMDSClient`` (token, retries, transport) behind this object."""
        client = self._client
        if client is None:
            with self._lock_for("_client"):
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
        return self.service_url + _META

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
        from .compat import flavoured

        return flavoured(exc, transport)

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

    # -- identity ----------------------------------------------------------

    @uncached(sources=("instance_identity_document",))
    def account_id(self) -> str:
        """The current AWS account ID, e.g. '123456789012'."""
        return _field(_IDENTITY, self.instance_identity_document, "accountId")

    ami_id = Leaf("meta-data/ami-id", parse.text, "The ID of the AMI used to launch the instance.")
    ami_launch_index = Leaf(
        "meta-data/ami-launch-index",
        parse.integer,
        "The index of the instance in the launch request, zero-based.",
    )
    ami_manifest_path = Leaf(
        "meta-data/ami-manifest-path",
        parse.text,
        "The AMI manifest path in S3, or '(unknown)' on EBS-backed AMIs.",
    )
    ancestor_ami_ids = Leaf(
        "meta-data/ancestor-ami-ids",
        parse.lines,
        "AMI IDs of instances rebundled to create this AMI; [] if none.",
    )
    autoscaling_target_lifecycle_state = UncachedLeaf(
        "meta-data/autoscaling/target-lifecycle-state",
        parse.optional_text,
        "Uncached. The target Auto Scaling lifecycle state, or None outside an ASG.",
    )
    availability_zone = Leaf(
        "meta-data/placement/availability-zone", parse.text, "The current AZ, e.g. 'eu-west-1a'."
    )
    availability_zone_id = Leaf(
        "meta-data/placement/availability-zone-id",
        parse.optional_text,
        "The cross-account ID of the current AZ, e.g. 'use1-az6', or None.",
    )
    block_device_mapping_names = Leaf(
        _BLOCK_DEVICE_MAPPING,
        parse.names,
        "Names in the block device mapping (ami, root, ebsN, ephemeralN, swap).",
        in_snapshot=False,  # the keys of block_device_mapping
    )
    domain = Leaf(
        "meta-data/services/domain",
        parse.text,
        "The domain for AWS resources in the region, e.g. 'amazonaws.com'.",
    )
    events_maintenance_history = UncachedLeaf(
        "meta-data/events/maintenance/history",
        parse.json_list,
        "Uncached. Completed or canceled scheduled events (list of dicts).",
    )
    events_maintenance_scheduled = UncachedLeaf(
        "meta-data/events/maintenance/scheduled",
        parse.json_list,
        "Uncached. Active scheduled maintenance events (list of dicts).",
    )
    events_recommendations_rebalance = UncachedLeaf(
        "meta-data/events/recommendations/rebalance",
        parse.optional_json_object,
        "Uncached. The rebalance recommendation ({'noticeTime': ...}), or None.",
    )
    hostname = Leaf(
        "meta-data/hostname",
        parse.optional_text,
        "The instance's hostname as the OS sees it (private DNS, IP or resource name).",
    )
    iam_info = Leaf(
        _IAM_INFO,
        _iam_info,
        "The IAM instance profile (IamInfoDict), or None if no role is attached.",
    )
    iam_role_names = UncachedLeaf(
        _ROLES_DIR,
        parse.names,
        "Uncached. Names of the roles with credentials (usually one; [] if none).",
    )
    identity_credentials_ec2_info = Leaf(
        "meta-data/identity-credentials/ec2/info",
        parse.optional_json_object,
        "Information about the EC2 identity credentials, or None.",
    )
    identity_credentials_ec2 = UncachedLeaf(
        "meta-data/identity-credentials/ec2/security-credentials/ec2-instance",
        parse.optional_json_object,
        "Uncached, secret. The instance identity credentials, or None.",
    )
    instance_action = UncachedLeaf(
        "meta-data/instance-action",
        parse.text,
        "Uncached. Whether the instance will reboot for bundling, e.g. 'none'.",
    )
    instance_id = Leaf("meta-data/instance-id", parse.text, "The instance ID, e.g. 'i-123456'.")
    instance_identity_document = Leaf(
        _IDENTITY,
        _identity_document,
        "The instance identity document (InstanceIdentityDocumentDict).",
    )
    instance_identity_pkcs7 = Leaf(
        "dynamic/instance-identity/pkcs7",
        parse.optional_text,
        "PKCS7 signature of the identity document, or None.",
    )
    instance_identity_signature = Leaf(
        "dynamic/instance-identity/signature",
        parse.optional_text,
        "SHA256 signature of the identity document, or None.",
    )
    instance_identity_rsa2048 = Leaf(
        "dynamic/instance-identity/rsa2048",
        parse.optional_text,
        "RSA-2048 PKCS7 signature of the identity document, or None.",
    )
    instance_life_cycle = Leaf(
        "meta-data/instance-life-cycle",
        parse.text,
        "The purchasing option: 'spot', 'on-demand', 'scheduled' or 'capacity-block'.",
    )
    instance_type = Leaf(
        "meta-data/instance-type", parse.text, "The instance type, e.g. 't2.nano'."
    )
    ipv6 = Leaf(
        "meta-data/ipv6",
        parse.optional_text,
        "The IPv6 address of the primary interface, or None.",
    )
    kernel_id = Leaf(
        "meta-data/kernel-id", parse.optional_text, "The kernel ID, or None if it has none."
    )
    mac = Leaf("meta-data/mac", parse.text, "The MAC address of the primary interface.")
    partition = Leaf(
        "meta-data/services/partition",
        parse.text,
        "The AWS partition, e.g. 'aws', 'aws-us-gov' or 'aws-cn'.",
    )
    placement_group_name = Leaf(
        "meta-data/placement/group-name",
        parse.optional_text,
        "The placement group, or None.",
    )
    placement_host_id = Leaf(
        "meta-data/placement/host-id",
        parse.optional_text,
        "The Dedicated Host ID, or None.",
    )
    placement_partition_number = Leaf(
        "meta-data/placement/partition-number",
        parse.optional_integer,
        "The partition number in a partition placement group, or None.",
    )
    private_hostname = Leaf(
        "meta-data/local-hostname", parse.text, "The private IPv4 DNS hostname of the instance."
    )
    private_ipv4 = Leaf("meta-data/local-ipv4", parse.text, "The private IPv4 of the instance.")
    product_codes = Leaf(
        "meta-data/product-codes", parse.lines, "Marketplace product codes; [] if none."
    )
    public_hostname = Leaf(
        "meta-data/public-hostname",
        parse.optional_text,
        "The public DNS hostname, or None if the instance is not public.",
    )
    public_ipv4 = Leaf(
        "meta-data/public-ipv4",
        parse.optional_text,
        "The public IPv4 address, or None if the instance is not public.",
    )
    ramdisk_id = Leaf("meta-data/ramdisk-id", parse.optional_text, "The RAM disk ID, or None.")
    reservation_id = Leaf(
        "meta-data/reservation-id", parse.text, "The ID of the reservation, e.g. 'r-1234'."
    )
    security_groups = Leaf(
        "meta-data/security-groups", parse.lines, "Names of the instance's security groups."
    )
    spot_instance_action = UncachedLeaf(
        "meta-data/spot/instance-action",
        _spot_action,
        "Uncached. The SpotInstanceAction about to happen, or None.",
    )
    spot_termination_time = UncachedLeaf(
        "meta-data/spot/termination-time",
        parse.optional_text,
        "Uncached. When a spot instance will be terminated (ISO 8601), or None.",
    )
    system = Leaf(
        "meta-data/system",
        parse.optional_text,
        "The virtualization system: 'nitro' or 'xen', or None.",
    )
    user_data = Leaf(
        "user-data",
        lambda path, body: body,
        "The raw user data (bytes), or None if there is none.",
    )

    # -- derived values ----------------------------------------------------

    @cached(sources=("instance_identity_document",))
    def region(self) -> str:
        """The region the instance runs in, e.g. 'eu-west-1'."""
        return _field(_IDENTITY, self.instance_identity_document, "region")

    @uncached(sources=("iam_info",))
    def instance_profile_arn(self) -> Optional[str]:
        """The ARN of the instance profile, from ``iam_info``, or None."""
        info = self.iam_info
        return None if info is None else _field(_IAM_INFO, info, "InstanceProfileArn")

    @uncached(sources=("iam_info",))
    def instance_profile_id(self) -> Optional[str]:
        """The ID of the instance profile, from ``iam_info``, or None."""
        info = self.iam_info
        return None if info is None else _field(_IAM_INFO, info, "InstanceProfileId")

    @uncached(sources=("instance_profile_arn",))
    def instance_profile_name(self) -> Optional[str]:
        """The instance profile name, the last part of its ARN, or None."""
        arn = self.instance_profile_arn
        return None if arn is None else arn.rsplit("/", 1)[-1]

    @uncached(listing=_ROLES)
    def iam_security_credentials(self) -> Optional[IamSecurityCredentialsDict]:
        """Uncached, secret. Credentials of the role attached to the instance, or None.

        The role is the one ``iam/security-credentials/`` lists, which can differ
        from the instance profile's name.
        """
        roles = self.iam_role_names
        if not roles:
            return None
        path = self.role_credentials_path(roles[0])
        return parse.optional_json_object(path, self._read(path))  # type: ignore[return-value]

    @staticmethod
    def role_credentials_path(role: str) -> str:
        return _role_credentials(role)

    @staticmethod
    def block_device_path(name: str) -> str:
        return _block_device(name)

    @cached(listing=_BLOCK_DEVICES)
    def block_device_mapping(self) -> Dict[str, str]:
        """Block device mapping name -> device, e.g. {'root': '/dev/xvda'}."""
        return _children(self, _BLOCK_DEVICES, self.block_device_mapping_names, parse.text)

    @cached(listing=_INTERFACES)
    def network_interfaces(self) -> Dict[str, NetworkInterface]:
        """MAC address -> NetworkInterface, for every attached interface."""
        macs = _INTERFACES.entries(_MACS, self._read(_MACS))
        return {mac: NetworkInterface(mac, self) for mac in macs}

    @cached(sources=("mac", "network_interfaces"))
    def primary_network_interface(self) -> NetworkInterface:
        """The interface whose MAC is ``mac``: a name for it that needs no MAC.

        The same object as ``network_interfaces[mac]`` (templates and scripts
        that run on many instances cannot know the MAC in advance).
        """
        mac = self.mac
        listed = self.network_interfaces.get(mac)
        return listed if listed is not None else NetworkInterface(mac, self)

    @cached(listing=_KEYS)
    def public_keys(self) -> Dict[str, PublicKey]:
        """Key name -> PublicKey, from the ``INDEX=NAME`` lines IMDS lists; {} if none."""
        path = _KEYS.item
        return {
            name: PublicKey(index, self) for index, name in _public_keys(path, self._read(path))
        }

    @cached(listing=_TAGS)
    def tags(self) -> InstanceTags:
        """The instance's tags (InstanceTags); raises TagsNotEnabledError if tags are off."""
        path = _TAGS.item
        body = self._read(path)
        if body is None:
            raise self._error(TagsNotEnabledError())
        return InstanceTags(parse.names(path, body), self)


def _default() -> EC2Metadata:
    from . import ec2_metadata

    return ec2_metadata
