"""Descriptors that make metadata attributes read like the AWS docs.

``cached_property`` works like ``functools.cached_property`` (cache in the
instance ``__dict__``, ``del obj.attr`` to clear) but computes once even when
many threads ask at the same moment: Python 3.12 dropped the lock that
``functools.cached_property`` used to take, and a fresh object read by 32
threads must still fetch each path once.

``leaf(item, parse)`` declares an attribute that is one IMDS path parsed one
way. Declaring the path on the attribute keeps it in one place: the snapshot
enumerates these descriptors to prefetch every path concurrently.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Generic, Iterator, Optional, Tuple, TypeVar, overload

T = TypeVar("T")
_MISSING: Any = object()


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
    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.__doc__ = func.__doc__
        self.attrname = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    @overload
    def __get__(self, obj: None, owner: Optional[type] = None) -> cached_property[T]: ...

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


class Leaf(cached_property[T]):
    """A cached attribute that is the path ``item`` parsed by ``parse``."""

    def __init__(self, item: str, parse: Callable[[str, Optional[bytes]], T], doc: str) -> None:
        def read(obj: LazyObject) -> T:
            return parse(obj._path(item), obj._read(item))

        super().__init__(read)
        self.item = item
        self.__doc__ = doc


class UncachedLeaf(Generic[T]):
    """An attribute that is the path ``item`` parsed by ``parse``, fetched on every access.

    For values that change while the instance runs (spot notices, events).
    """

    def __init__(self, item: str, parse: Callable[[str, Optional[bytes]], T], doc: str) -> None:
        self.item = item
        self.parse = parse
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: Optional[type] = None) -> UncachedLeaf[T]: ...

    @overload
    def __get__(self, obj: LazyObject, owner: Optional[type] = None) -> T: ...

    def __get__(self, obj: Optional[LazyObject], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        return self.parse(obj._path(self.item), obj._read(self.item))


def leaves(cls: type) -> Iterator[Tuple[str, str]]:
    """``(attribute name, item)`` of every leaf a class declares, in definition order."""
    seen = set()
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, (Leaf, UncachedLeaf)) and name not in seen:
                seen.add(name)
                yield name, value.item
