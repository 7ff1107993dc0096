"""Salt 3006's ``metadata`` grain, rebuilt on the core client: ``meta-data:...``, ``dynamic:...``.

Salt up to 3006 had ``salt/grains/metadata.py``: with ``metadata_server_grains:
True`` it walked IMDS from ``/latest/`` and returned the tree as grains
``meta-data``, ``dynamic`` and ``user-data``; 3007 kept it, 3008 dropped it. States and
targets written for it (``-G 'meta-data:placement:availability-zone:eu-*'``)
keep working with this module, opted in the same way. The shape is 3006's:

- a listing entry ending in ``/`` is a mapping of what it lists;
- an entry ``N=name`` (public keys) is the mapping listed at ``N/``, under ``name``;
- any other entry is its body as text, JSON documents included (3006 never
  parsed them: Salt's HTTP client hands the grain text, not bytes).

Unlike 3006: credentials (``meta-data:iam:security-credentials``,
``meta-data:identity-credentials:ec2:security-credentials``) and ``user-data``
are left out unless ``ec2_metadata: {include_secrets: true}`` /
``{include_user_data: true}`` ask for them, as for the ``ec2`` grain; the
walk is one pipelined pass with the ``ec2`` grain's client and settings; a
value that cannot be read omits the grains with one WARNING (3006 put the
error page in the grain); an entry IMDS answers 404 for is left out; the walk
stops at ``bounds.MAX_TREE_DEPTH`` levels and ``bounds.MAX_TREE_PATHS``
paths, and a listed name that is not a plain path segment fails the walk
(``parse.entries``): whatever answers at the endpoint may not be IMDS.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional

from ec2_metadata_core import config, parse
from ec2_metadata_core.bounds import MAX_TREE_DEPTH, MAX_TREE_PATHS
from ec2_metadata_core.errors import ConfigError, IMDSError
from ec2_metadata_core.sensitive import SECRET_DIRS

from . import ec2
from .options import connection_settings, from_minion_opts

log = logging.getLogger(__name__)

OPT_IN = "metadata_server_grains"
ROOTS = ("meta-data/", "dynamic/")
USER_DATA = "user-data"


class _TooBig(Exception):
    """The tree goes past bounds.MAX_TREE_DEPTH or bounds.MAX_TREE_PATHS."""


def opted_in(opts: Mapping[str, Any]) -> bool:
    """``metadata_server_grains`` set true in the minion config (a bad value says so, once)."""
    value = opts.get(OPT_IN, False)
    try:
        return bool(config.parse_bool(OPT_IN, value))
    except ConfigError as exc:
        log.warning("metadata grains omitted: invalid setting: %s", exc)
        return False


def child_path(listing: str, entry: str) -> str:
    """The path an entry of the listing at ``listing`` names (``0=name`` -> ``0/``)."""
    if "=" in entry and not entry.endswith("/"):
        return listing + entry.split("=", 1)[0] + "/"
    return listing + entry


def _is_secret(path: str) -> bool:
    return any(path.startswith(top) for top in SECRET_DIRS)


def walk(client: Any, include_secrets: bool = False) -> Dict[str, Optional[bytes]]:
    """Every body under ``meta-data/`` and ``dynamic/``, by path, in one pipelined pass."""
    count = [0]
    stopped: List[Exception] = []  # the walk stops following, and fails below

    def follow(path: str, body: Optional[bytes]) -> List[str]:
        if not path.endswith("/") or body is None or stopped:
            return []
        try:
            children = [child_path(path, entry) for entry in parse.entries(path, body)]
        except IMDSError as exc:
            stopped.append(exc)
            return []
        children = [c for c in children if include_secrets or not _is_secret(c)]
        count[0] += len(children)
        if count[0] > MAX_TREE_PATHS or (children and path.count("/") >= MAX_TREE_DEPTH):
            stopped.append(_TooBig())
            return []
        return children

    outcomes = client.fetch(ROOTS, follow=follow)
    if stopped:
        raise stopped[0]
    bodies: Dict[str, Optional[bytes]] = {}
    for path, outcome in outcomes.items():
        if isinstance(outcome, IMDSError):
            raise outcome
        bodies[path] = outcome
    return bodies


def tree(bodies: Mapping[str, Optional[bytes]], listing: str) -> Dict[str, Any]:
    """The mapping 3006 built for the listing at ``listing`` from the bodies ``walk`` read."""
    result: Dict[str, Any] = {}
    for entry in parse.entries(listing, bodies.get(listing)):
        path = child_path(listing, entry)
        if path not in bodies or bodies[path] is None:
            continue  # a secret left out, or 404
        if path.endswith("/"):
            name = entry.split("=", 1)[1] if "=" in entry else entry[:-1]
            result[name] = tree(bodies, path)
        else:
            result[entry] = parse.decode(path, bodies[path] or b"")
    return result


def shape(
    bodies: Mapping[str, Optional[bytes]], user_data: Optional[bytes] = None
) -> Dict[str, Any]:
    """The grains: ``meta-data``, ``dynamic`` and, when read, ``user-data``."""
    grains: Dict[str, Any] = {root.rstrip("/"): tree(bodies, root) for root in ROOTS}
    if user_data is not None:
        grains[USER_DATA] = user_data.decode("utf-8", "replace")
    return grains


def grains(opts: Mapping[str, Any]) -> Dict[str, Any]:
    """The 3006-shaped grains for a minion with these opts; ``{}`` when not opted in or off EC2."""
    if not opted_in(opts):
        return {}
    try:
        options = from_minion_opts(opts)
        settings = connection_settings(options)
    except ConfigError as exc:
        log.warning("metadata grains omitted: invalid setting: %s", exc)
        return {}
    if not options.enabled or settings.disabled:
        return {}
    if not ec2.present(options, settings, opts.get("cachedir")):
        return {}
    client = ec2.endpoint_for(settings).client
    try:
        bodies = walk(client, options.include_secrets)
        user_data = client.get(USER_DATA) if options.include_user_data else None
        return shape(bodies, user_data)
    except _TooBig:
        log.warning(
            "metadata grains omitted: %s lists more than %d paths or %d levels: not an IMDS",
            settings.endpoint,
            MAX_TREE_PATHS,
            MAX_TREE_DEPTH,
        )
    except IMDSError as exc:
        log.warning(
            "metadata grains omitted: reading instance metadata from %s failed: %s",
            settings.endpoint,
            exc,
        )
    return {}
