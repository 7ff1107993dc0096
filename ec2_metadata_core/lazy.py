"""Lazy attributes and their declarations: the machinery the metadata model is written in.

An object of the model (``model.py``) is a ``LazyObject``: each attribute is
read from IMDS on first access and cached (``cached_property``, ``Leaf``), or
read on every access (``uncached_property``, ``UncachedLeaf``), for values
that change while the instance runs. A cached value is computed once however
many threads ask (``once.py``); ``del obj.attr`` or ``clear_all()`` forgets it.

Every metadata attribute also declares what it reads: a path (``Leaf``), a
listing whose entries name the next paths (``Listing``), or the attributes it
is derived from (``sources``). ``declared(cls)`` is that table; the gather
plan (``plan.py``), the snapshot's keys and the watcher's paths are read off
it, so a path is written once, next to the attribute it feeds. Nothing here
knows IMDS's paths: those are the model's.
"""

from __future__ import annotations

import functools
import re
import types
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
    TypeVar,
    overload,
)
from urllib.parse import quote

from .once import MISSING, OncePerName

T = TypeVar("T")
D = TypeVar("D")  # a descriptor: on the class, it is itself
# A body's parser: (its path, for the error; the body, None for 404) -> the value.
Parser = Callable[[str, Optional[bytes]], T]

# What a URL path carries as it is (RFC 3986 pchar). Every character a tag
# key may hold (letters, digits, + - = . , _ : @) is among them, and IMDS is
# not known to percent-decode paths: such names must travel literally.
_PATH_CHARACTERS = "!$&'()*+,;=:@"
# The same set with quote()'s own always-safe characters: a name made only of
# these is its own segment (a watcher builds a tag's path at every poll).
_SEGMENT = re.compile(r"[A-Za-z0-9_.~\-!$&'()*+,;=:@]*\Z")


def segment(name: str) -> str:
    """``name`` (from a listing) as a path segment: percent-encode only what a path cannot hold."""
    if _SEGMENT.match(name):
        return name
    return quote(name, safe=_PATH_CHARACTERS)


def under(base: str) -> Callable[[str], str]:
    """A listed name -> the item ``base`` + the name as a path segment."""

    def item(name: str) -> str:
        return base + segment(name)

    return item


class Listing(NamedTuple):
    """A path whose body names more paths to read.

    ``item`` is under the declaring object's directory (see ``LazyObject._path``).
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
        # attribute -> its computation, one at a time (see ``once``)
        self._once = OncePerName()

    def _read(self, item: str) -> Optional[bytes]:  # pragma: no cover - interface
        """The body at this object's path ``item``; ``None`` if absent."""
        raise NotImplementedError

    def _path(self, item: str) -> str:  # pragma: no cover - interface
        """The path under ``/latest/`` that ``item`` names for this object."""
        raise NotImplementedError

    def clear_all(self) -> None:
        """Forget every cached attribute; the next access fetches again."""
        for key in tuple(self.__dict__):
            if isinstance(getattr(type(self), key, None), cached_property):
                self.__dict__.pop(key, None)


class _Attribute(Generic[T]):
    """What cached and uncached attributes share: the function, its doc, its declaration."""

    def __init__(self, func: Callable[[Any], T], declaration: Optional[Declaration] = None) -> None:
        self.func = func
        self.__doc__ = func.__doc__
        # Set on metadata attributes: what they read (see ``declared``).
        self.declaration = declaration

    @overload
    def __get__(self: D, obj: None, owner: Optional[type] = None) -> D:
        """On the class: the descriptor itself."""

    @overload
    def __get__(self, obj: LazyObject, owner: Optional[type] = None) -> T:
        """On an instance: the value."""

    def __get__(self, obj: Optional[LazyObject], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        return self._value(obj)

    def _value(self, obj: LazyObject) -> T:  # pragma: no cover - interface
        raise NotImplementedError


class cached_property(_Attribute[T]):
    """``functools.cached_property`` (``del obj.attr`` clears) that computes once under threads.

    Python 3.12 dropped the lock ``functools.cached_property`` used to take,
    and a fresh object read by 32 threads must still fetch each path once.
    Once computed, the value is in the instance's ``__dict__``, which Python
    reads before this (non-data) descriptor: a warm read runs no code here.
    """

    def __init__(self, func: Callable[[Any], T], declaration: Optional[Declaration] = None) -> None:
        super().__init__(func, declaration)
        self.attrname = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    def _value(self, obj: LazyObject) -> T:
        cache = obj.__dict__
        name = self.attrname
        # get(), not `in` then [], so a concurrent del cannot raise KeyError here
        value = cache.get(name, MISSING)
        if value is not MISSING:
            return value  # type: ignore[no-any-return]

        def compute() -> T:
            computed = cache[name] = self.func(obj)
            return computed

        return obj._once[name].run(lambda: cache.get(name, MISSING), compute)


class uncached_property(_Attribute[T]):
    """An attribute computed on every access (values that change while the instance runs)."""

    def _value(self, obj: LazyObject) -> T:
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


def read_listed(
    obj: LazyObject, listing: Listing, names: List[str], parse_child: Parser[T]
) -> Dict[str, T]:
    """Name -> the value of ``listing.named(name)`` under ``obj``, for each listed name."""
    found = {}
    for name in names:
        item = listing.named(name)
        found[name] = parse_child(obj._path(item), obj._read(item))
    return found
