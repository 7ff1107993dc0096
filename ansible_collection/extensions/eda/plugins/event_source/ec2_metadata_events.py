# Copyright: ec2-metadata-core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt
# or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Event-Driven Ansible source: EC2 instance notices from IMDS, one event per new notice.

ansible-rulebook runs this file by path (``runpy.run_path``), outside Ansible's
collection loader, so the client it uses is the collection's own copy of the
core in ``plugins/module_utils`` (the build copies it there), imported from the
collections directory this file was installed into.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Optional

DOCUMENTATION = r"""
---
short_description: Notices from the EC2 instance metadata service (IMDSv2) as events.
description:
  - An ansible-rulebook event source plugin that polls the instance metadata
    service of the EC2 instance it runs on and puts one event on the queue per
    new notice or change; a notice is never reported twice.
  - "Kinds: C(spot/interruption) (C(spot/instance-action): stop, terminate or
    hibernate, about two minutes ahead), C(rebalance/recommendation),
    C(maintenance/scheduled), C(maintenance/cancelled), C(maintenance/completed),
    C(autoscaling/lifecycle) (target lifecycle state changes) and C(tags/changed)."
  - "Each event holds C(kind), C(notice) (the document as IMDS gave it), C(time)
    (ISO 8601 UTC or null), C(instance_id), C(region), C(availability_zone) and
    C(path), plus the C(meta) ansible-rulebook adds."
  - The first poll reports what is pending when the rulebook starts (a spot
    notice, a rebalance recommendation, scheduled maintenance, the lifecycle
    state); tags and the maintenance history are taken as they are then and
    their changes are reported later.
  - "A failed poll is a gap, not an error: one warning per outage, and notices
    posted meanwhile are reported once IMDS answers again."
  - Settings left unset follow the AWS SDK conventions
    (C(AWS_EC2_METADATA_SERVICE_ENDPOINT), C(AWS_METADATA_SERVICE_TIMEOUT), ...,
    then C(~/.aws/config)).
  - Needs only the Python standard library; the client ships in the collection.
  - "Untrusted text: C(notice), C(instance_id), C(region) and
    C(availability_zone) are what the endpoint sent (tags are written by
    whoever may tag the instance). ansible-rulebook gives a playbook its
    C(extra_vars), and the whole event as C(ansible_eda.event), in a file that
    ansible-core templates, and no source can mark a value unsafe on that way.
    Pass a playbook only C(kind), C(path), C(time) (written by this source:
    ISO 8601 UTC, or null) and values the rule's condition matched against a
    fixed list; a playbook that needs a tag reads it with
    M(imds.ec2.ec2_metadata_facts), whose values are marked unsafe."
options:
  interval:
    description:
      - Seconds between polls. AWS asks spot instances to check every 5 seconds.
    type: float
    default: 5
  kinds:
    description:
      - The kinds to report, or their groups (C(spot), C(rebalance),
        C(maintenance), C(autoscaling), C(tags)); a list or a comma-separated
        string. Only the paths these kinds need are read.
      - Default is every kind.
    type: list
    elements: str
  endpoint:
    description:
      - The IMDS URL, for example C(http://[fd00:ec2::254]).
      - Default is C(AWS_EC2_METADATA_SERVICE_ENDPOINT), else the mode's address.
    type: str
  endpoint_mode:
    description:
      - C(IPv4) or C(IPv6).
    type: str
  timeout:
    description:
      - Seconds per request (default 1).
    type: float
  attempts:
    description:
      - Tries per request (default 3).
    type: int
  allow_imdsv1:
    description:
      - Fall back to IMDSv1 if the token request is refused.
    type: bool
"""

EXAMPLES = r"""
- name: Drain this instance before EC2 interrupts it
  hosts: localhost
  sources:
    - imds.ec2.ec2_metadata_events:
        interval: 5
        kinds: [spot, rebalance]
  rules:
    - name: Spot interruption
      # extra_vars are templated by ansible-core: only values safe by construction
      condition: >-
        event.kind == "spot/interruption"
        and event.notice.action in ["stop", "terminate", "hibernate"]
      action:
        run_playbook:
          name: drain.yml
          extra_vars:
            spot_action: "{{ event.notice.action }}"
            spot_time: "{{ event.time }}"
    - name: Tags changed (the playbook reads them with imds.ec2.ec2_metadata_facts)
      condition: event.kind == "tags/changed"
      action:
        run_playbook:
          name: retag.yml
"""

# The source's own arguments; the others documented above are the core's
# settings (``config.OPTIONS``), passed on as they are (the core validates them).
_OWN_ARGS = ("interval", "kinds")


def _core() -> Any:
    """The collection's ``plugins/module_utils`` package (the core), as an import.

    This file sits at ``<root>/ansible_collections/imds/ec2/extensions/eda/
    plugins/event_source/``; ``<root>`` goes first on ``sys.path`` so this
    collection's own copy is the one imported.
    """
    root = str(Path(__file__).resolve().parents[7])
    if root not in sys.path:
        sys.path.insert(0, root)
    from ansible_collections.imds.ec2.plugins.module_utils import config, errors, events, model

    return config, errors, events, model


def watcher(args: Optional[Dict[str, Any]]) -> Any:
    """A ``Watcher`` for the source's arguments; ``ConfigError`` names a bad one."""
    config, errors, events, model = _core()
    args = args or {}
    known = _OWN_ARGS + tuple(config.OPTIONS)
    unknown = sorted(str(key) for key in args if key not in known)
    if unknown:
        raise errors.ConfigError(
            "ec2_metadata_events: {} is not an argument (known: {})".format(
                unknown[0], ", ".join(known)
            )
        )
    metadata = model.EC2Metadata(**config.settings_in(args))
    interval = args.get("interval")
    return events.Watcher(
        metadata,
        interval=events.DEFAULT_INTERVAL if interval is None else interval,
        kinds=args.get("kinds"),
    )


async def main(queue: asyncio.Queue, args: Dict[str, Any]) -> None:
    """Put each new notice on ``queue`` until the rulebook stops.

    The watcher blocks between polls, so it runs in a thread of its own that
    hands events to this coroutine; cancelling the coroutine stops the thread
    within one poll. A setting the client refuses (or AWS_EC2_METADATA_DISABLED)
    ends the source with that error; an IMDS outage does not.
    """
    errors = _core()[1]
    try:
        source = watcher(args)
    except errors.ConfigError as exc:
        # ansible-rulebook logs every frame of a source's exception: a fresh one
        # starts here, so a bad argument is its line, not the client's frames too.
        raise errors.ConfigError(str(exc)) from None
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    done = object()

    def hand_over(item: object) -> None:
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, item)
        except RuntimeError:  # the loop is closed: the rulebook has gone
            stop.set()

    def poll() -> None:
        try:
            for event in source.watch(stop):
                hand_over(dict(event))
        except Exception as exc:  # the coroutine raises it
            hand_over(exc)
            return
        hand_over(done)

    threading.Thread(target=poll, name="ec2_metadata_events", daemon=True).start()
    try:
        while True:
            item = await inbox.get()
            if item is done:
                return
            if isinstance(item, Exception):
                raise item
            await queue.put(item)
    finally:
        stop.set()
