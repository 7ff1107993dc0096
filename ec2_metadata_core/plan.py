"""The gather plan: the paths a snapshot reads, read off the model's declarations.

``Plan(keys)`` names the paths to ask for first, and ``follow(path, body)``
the paths a listing's body names, the moment it arrives (``IMDSClient.fetch``
calls it as each answer comes in). Both are pure functions of the
declarations of ``model.py`` (``lazy.declared``, ``lazy.Listing``) and the bodies: the
plan never reads the model, so no transport callback re-enters it.

Listings go first, the deepest first: their entries are the longest chain of
the gather (token, MAC list, per-interface values, IPv4 association).

Categories the model does not know are followed within bounds
(``Discovery``): a category nested too deep or too wide is refused whole,
and the gather goes on without it.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Set, Tuple

from . import parse
from .bounds import MAX_UNKNOWN_DEPTH, MAX_UNKNOWN_PATHS
from .errors import IMDSError, LimitError
from .lazy import Listing, declared
from .model import CATEGORIES, EC2Metadata

# A listing's path with "*" for each segment a parent listing named.
Pattern = Tuple[str, ...]


def _matches(pattern: Pattern, path: str) -> bool:
    segments = path.split("/")
    return len(pattern) == len(segments) and all(
        want in ("*", got) for want, got in zip(pattern, segments)
    )


def _depth(listing: Listing) -> int:
    """How many listings deep the chain below ``listing`` goes (itself included)."""
    if listing.each is None:
        return 1
    nested = [d.listings for d in declared(listing.each).values()]
    return 1 + max((_depth(inner) for group in nested for inner in group), default=0)


def known_categories() -> Set[str]:
    """Categories under ``meta-data/`` that some attribute of the model reads."""
    items: List[str] = []
    for declaration in declared(EC2Metadata).values():
        items.extend(declaration.reads)
        items.extend(listing.item for listing in declaration.listings)
    meta = CATEGORIES.item
    return {item[len(meta) :].split("/")[0] for item in items if item.startswith(meta)}


def category_of(path: str) -> str:
    """The category directory ``path`` is in, e.g. ``meta-data/evil/``."""
    meta = CATEGORIES.item
    return meta + path[len(meta) :].split("/", 1)[0] + "/"


class Discovery:
    """The bounds on the categories the model does not know, over one pass.

    ``below(path, body)`` names the paths a directory of such a category
    lists, or raises the ``IMDSError`` that refuses its category: a listing
    that is not one (``parse.entries``), a directory deeper than
    ``MAX_UNKNOWN_DEPTH`` levels below ``meta-data/``, or more paths than
    ``MAX_UNKNOWN_PATHS`` in all. ``refused`` keeps each refused category's
    error; nothing below it is read again.
    """

    def __init__(self) -> None:
        self.paths = 0
        self.refused: Dict[str, IMDSError] = {}

    def categories(self, entries: List[str]) -> List[str]:
        """The unknown categories (``meta-data/`` entries) within the budget; the rest refused."""
        kept = []
        for entry in entries:
            if self.paths < MAX_UNKNOWN_PATHS:
                self.paths += 1
                kept.append(entry)
            else:
                category = category_of(CATEGORIES.named(entry))
                self.refused[category] = self._too_many(category)
        return kept

    @staticmethod
    def _too_many(category: str) -> IMDSError:
        return LimitError(
            category, "categories the model does not know past {} paths".format(MAX_UNKNOWN_PATHS)
        )

    def below(self, path: str, body: Optional[bytes]) -> List[str]:
        category = category_of(path)
        failure = self.refused.get(category)
        if failure is not None:
            raise failure
        try:
            entries = parse.entries(path, body)
            depth = path[len(CATEGORIES.item) :].count("/")
            if depth >= MAX_UNKNOWN_DEPTH and any(entry.endswith("/") for entry in entries):
                raise LimitError(
                    category, "a category nested deeper than {} levels".format(MAX_UNKNOWN_DEPTH)
                )
            self.paths += len(entries)
            if self.paths > MAX_UNKNOWN_PATHS:
                raise self._too_many(category)
        except IMDSError as exc:
            self.refused[category] = exc
            raise
        return [path + entry for entry in entries]


class Plan:
    """The paths a gather of ``keys`` (``EC2Metadata`` attribute names) reads.

    With ``discover``, the categories the service lists and the model does
    not know are read too, whole (see ``unknown``).
    """

    def __init__(self, keys: Iterable[str], discover: bool = False) -> None:
        self.discover = discover
        self._known = known_categories() if discover else set()
        self.discovery = Discovery()
        self._listings: Dict[str, Listing] = {}  # by path
        # Listings under a directory a listing names: by their path with "*" for that name.
        self._nested: List[Tuple[Pattern, Listing]] = []
        # A class an ``each`` listing names -> the items to read in each such directory.
        self._children: Dict[type, List[str]] = {}
        listings: List[Listing] = []
        reads = self._collect(EC2Metadata, list(keys), "", listings)
        listings.sort(key=_depth, reverse=True)  # stable: declaration order otherwise
        first = [listing.item for listing in listings]
        if discover:
            first.append(CATEGORIES.item)
        self.first: List[str] = list(dict.fromkeys(first + reads))

    def _collect(
        self, cls: type, names: List[str], pattern: str, listings: List[Listing]
    ) -> List[str]:
        """Items under ``pattern`` that ``names`` of ``cls`` read; their listings go to the plan."""
        table = declared(cls)
        reads: List[str] = []
        seen: Set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            declaration = table[name]
            for source in declaration.sources:
                visit(source)
            reads.extend(pattern + item for item in declaration.reads)
            for listing in declaration.listings:
                path = pattern + listing.item
                if "*" in pattern:
                    if (tuple(path.split("/")), listing) not in self._nested:
                        self._nested.append((tuple(path.split("/")), listing))
                        listings.append(listing)
                elif path not in self._listings:
                    self._listings[path] = listing
                    listings.append(listing)
                each = listing.each
                if each is not None and each not in self._children:
                    inner: List[Listing] = []
                    below = pattern + listing.item + "*/"
                    items = self._collect(each, list(declared(each)), below, inner)
                    # This class's own listings first, as at the top.
                    firsts = [below + nested.item for nested in inner]
                    ordered = list(dict.fromkeys(firsts + items))
                    self._children[each] = [item[len(below) :] for item in ordered]

        for name in names:
            visit(name)
        return reads

    def follow(self, path: str, body: Optional[bytes]) -> List[str]:
        """The paths ``path``'s body names, if it is a listing of the plan (body None: 404)."""
        listing = self._listings.get(path)
        if listing is not None:
            return self._expand(path, listing, body)
        for pattern, listing in self._nested:
            if path.endswith(listing.item) and _matches(pattern, path):
                return self._expand(path, listing, body)
        if self.discover and self._is_unknown_listing(path):
            try:
                if path == CATEGORIES.item:
                    unknown = self.discovery.categories(self.unknown(body))
                    return [CATEGORIES.named(entry) for entry in unknown]
                return self.discovery.below(path, body)
            except IMDSError:
                return []  # reported when the snapshot reads the listing
        return []

    def _expand(self, path: str, listing: Listing, body: Optional[bytes]) -> List[str]:
        try:
            names = listing.entries(path, body)
        except IMDSError:
            return []  # reported when the value is read
        directory = path[: len(path) - len(listing.item)]
        named = [directory + listing.named(name) for name in names]
        if listing.each is not None:  # each name is a directory of such an object
            items = self._children[listing.each]
            return [below + item for below in named for item in items]
        return named

    def _is_unknown_listing(self, path: str) -> bool:
        meta = CATEGORIES.item
        if path == meta:
            return True
        category = path[len(meta) :].split("/")[0]
        return path.startswith(meta) and path.endswith("/") and category not in self._known

    def unknown(self, body: Optional[bytes]) -> List[str]:
        """Entries of the ``meta-data/`` listing ``body`` that no attribute of the model reads."""
        known = self._known or known_categories()
        entries = CATEGORIES.entries(CATEGORIES.item, body)
        return [entry for entry in entries if entry.rstrip("/") not in known]
