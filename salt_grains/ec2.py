"""What the ``ec2`` grain module does: config -> probe -> snapshot -> grains.

State kept per minion process (Salt re-imports the grain module on every
refresh, but not this module): one ``IMDSClient`` per resolved setting, so its
session token is reused across refreshes and renewed by the core on expiry or
on a 401. Values are never kept: each refresh gathers afresh.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Mapping, Optional

from ec2_metadata_core import config
from ec2_metadata_core.client import IMDSClient
from ec2_metadata_core.errors import ConfigError, IMDSError, TagsNotEnabledError
from ec2_metadata_core.flat import flatten
from ec2_metadata_core.model import EC2Metadata
from ec2_metadata_core.presence import is_turned_off
from ec2_metadata_core.presence import probe as probe_client

from . import presence_cache
from .options import Options, connection_settings, from_minion_opts

log = logging.getLogger(__name__)

GRAIN = "ec2"
# The tags with their keys as they are, the shape of salt-contrib's ec2_tags grain.
TAGS_GRAIN = "ec2_tags"
# The tags under keys safe to target (no ``:``), the flat export's names.
SAFE_TAGS_GRAIN = "ec2_tags_safe"
_TAGS = "tags"


class _Endpoint:
    """The client for one setting, whether an IMDS has answered there, what was said."""

    def __init__(self, settings: config.Settings) -> None:
        self.client = IMDSClient(settings=settings)
        self.confirmed = False
        self.tags_hint_given = False


_endpoints: Dict[config.Settings, _Endpoint] = {}
_endpoints_lock = threading.Lock()


def endpoint_for(settings: config.Settings) -> _Endpoint:
    with _endpoints_lock:
        endpoint = _endpoints.get(settings)
        if endpoint is None:
            endpoint = _endpoints[settings] = _Endpoint(settings)
        return endpoint


def forget_clients() -> None:
    """Drop the per-process clients and what they learnt (tests use this)."""
    with _endpoints_lock:
        endpoints = list(_endpoints.values())
        _endpoints.clear()
    for endpoint in endpoints:
        endpoint.client.close()


def probe(endpoint: _Endpoint, timeout: float) -> Optional[IMDSError]:
    """``None`` if an IMDS answers the token request; else the error that says why not.

    One attempt with a short timeout (``presence.probe`` decides what counts
    as absent). The token the probe gets serves the gather too.
    """
    settings = endpoint.client.settings
    client = IMDSClient(settings=settings.for_probe(timeout))
    try:
        reason = probe_client(client)
        if reason is None:
            endpoint.client.tokens.adopt(client.tokens)
        return reason
    finally:
        client.close()


def tags_view(tags: Mapping[str, Any]) -> Dict[str, Any]:
    """Tags under keys free of ``:`` and other odd characters, none lost.

    The names are those of the flat export (``ec2-metadata-core dump --format
    flat``) without its ``tags_`` prefix, clash suffixes included.
    """
    prefix = _TAGS + "_"
    return {key[len(prefix) :]: value for key, value in flatten(dict(tags), _TAGS).items()}


def shape(snapshot: Dict[str, Any]) -> Dict[str, Any]:
    """The grains for one snapshot: ``ec2`` as is, plus the tag grains when tags are on."""
    result: Dict[str, Any] = {GRAIN: snapshot}
    tags = snapshot.get(_TAGS)
    if isinstance(tags, dict):
        result[TAGS_GRAIN] = dict(tags)
        result[SAFE_TAGS_GRAIN] = tags_view(tags)
    return result


def _not_found(
    options: Options, settings: config.Settings, cachedir: Optional[str], reason: IMDSError
) -> None:
    """Say (or not) that the probe found no IMDS, and remember it for a while."""
    remembered = presence_cache.path_in(cachedir)
    seconds = options.negative_cache_seconds
    if is_turned_off(reason):
        # Something at the IMDS address said no: an instance whose IMDS
        # is turned off. Worth one line per negative_cache_seconds.
        log.warning("ec2 grain omitted: %s", reason)
        presence_cache.remember(remembered, settings.endpoint, seconds)
        return
    why = None
    if options.endpoint is not None:
        why = "ec2_metadata.endpoint is set"
    elif presence_cache.answered_before(cachedir, settings.endpoint):
        why = "it answered this minion before"
    if why is None:
        log.debug("ec2 grain skipped: not on EC2 (%s)", reason)
        presence_cache.remember(remembered, settings.endpoint, seconds)
        return
    # An IMDS that should be here: a slow, throttled or unreachable one, not a
    # machine off EC2. Say so, and look again soon rather than in an hour.
    retry = min(seconds, presence_cache.RETRY_SOON_SECONDS)
    log.warning(
        "ec2 grain omitted: no IMDS answered at %s, though %s (%s); probing again in %gs "
        "(raise ec2_metadata.probe_timeout if IMDS is slow here)",
        settings.endpoint,
        why,
        reason,
        retry,
    )
    presence_cache.remember(remembered, settings.endpoint, seconds, retry_after=retry)


def present(options: Options, settings: config.Settings, cachedir: Optional[str]) -> bool:
    """Whether to read IMDS (grain, beacon): confirmed in this process, or a probe finds it."""
    endpoint = endpoint_for(settings)
    if endpoint.confirmed:
        return True
    remembered = presence_cache.path_in(cachedir)
    if presence_cache.is_fresh(remembered, settings.endpoint, options.negative_cache_seconds):
        log.debug(
            "ec2 grain skipped: no IMDS at %s (remembered in %s)", settings.endpoint, remembered
        )
        return False
    reason = probe(endpoint, options.probe_timeout)
    if reason is not None:
        _not_found(options, settings, cachedir, reason)
        return False
    endpoint.confirmed = True
    presence_cache.forget(remembered)
    presence_cache.remember_answer(cachedir, settings.endpoint)
    return True


def _hint_tags(settings: config.Settings, data: Mapping[str, Any]) -> None:
    """Once per process and endpoint: why there are no tag grains, and how to get them."""
    if data.get(_TAGS) is not None:
        return
    endpoint = endpoint_for(settings)
    if not endpoint.tags_hint_given:
        endpoint.tags_hint_given = True
        log.info("ec2_tags grain omitted: %s", TagsNotEnabledError())


def grains(opts: Mapping[str, Any]) -> Dict[str, Any]:
    """The grains for a minion with these opts; ``{}`` when there is nothing to say.

    Nothing but a ``{}`` and one WARNING leaves here when IMDS fails: every
    error the core raises is an IMDSError (TLS and socket errors included).
    """
    try:
        return _grains(opts)
    except IMDSError as exc:
        log.warning("ec2 grain omitted: %s", exc)
        return {}


def _grains(opts: Mapping[str, Any]) -> Dict[str, Any]:
    try:
        options = from_minion_opts(opts)
        if not options.enabled:
            log.debug("ec2 grain skipped: ec2_metadata.enabled is false")
            return {}
        settings = connection_settings(options)
    except ConfigError as exc:
        log.warning("ec2 grain omitted: invalid setting: %s", exc)
        return {}
    if settings.disabled:
        log.debug("ec2 grain skipped: AWS_EC2_METADATA_DISABLED is true")
        return {}
    if not present(options, settings, opts.get("cachedir")):
        return {}
    from ec2_metadata_core.snapshot import snapshot

    try:
        data = snapshot(
            EC2Metadata(client=endpoint_for(settings).client),
            include_secrets=options.include_secrets,
            include_user_data=options.include_user_data,
        )
    except IMDSError as exc:
        log.warning(
            "ec2 grain omitted: reading instance metadata from %s failed: %s",
            settings.endpoint,
            exc,
        )
        return {}
    _hint_tags(settings, data)
    return shape(data)
