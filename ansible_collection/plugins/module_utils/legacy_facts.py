# Copyright: ec2-metadata-core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt
# or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The flat ``ansible_ec2_*`` facts that amazon.aws.ec2_metadata_facts sets.

They are named after IMDS paths, so they are built from the bodies a snapshot
read (``snapshot(..., raw=bodies)``), keyed by path under ``/latest/``:

- a value at ``meta-data/<path>`` or ``dynamic/<path>`` is named
  ``ansible_ec2_<path>`` with ``/``, ``-`` and ``:`` turned into ``_``
  (``ansible_ec2_placement_availability_zone``); other characters stay;
- a JSON object also gives one name per key, the key lower-cased
  (``ansible_ec2_instance_identity_document_accountid``);
- security group lists are joined with commas; other text keeps its newlines;
- a value IMDS answered 404 for gets no name;
- ``ansible_ec2_instance_tags`` (dict), ``ansible_ec2_instance_tags_keys``,
  ``ansible_ec2_iam_instance_profile_role``, ``ansible_ec2_placement_region``,
  ``ansible_ec2_public_key`` and ``ansible_ec2_user_data`` are the extra names
  amazon.aws sets; the last two are None when absent (amazon.aws gives the
  string "None"), and user data and credentials only appear when asked for.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from ansible_collections.imds.ec2.plugins.module_utils.sensitive import is_secret_path

PREFIX = "ansible_ec2_"
_INVALID = re.compile(r"[-/:]")
_BASES = ("meta-data/", "dynamic/")
_COMMA_JOINED = frozenset(("security-groups", "security-group-ids"))
# Named on their own below, not from their paths.
_OWN_NAMES = ("public-keys/", "tags/instance/")


def legacy_name(path):
    """``ansible_ec2_`` plus ``path`` (relative to meta-data/ or dynamic/) made a variable name."""
    return PREFIX + _INVALID.sub("_", path)


def _relative(path):
    """``path`` under meta-data/ or dynamic/, unquoted; None for anything else."""
    for base in _BASES:
        if path.startswith(base):
            return "/".join(unquote(part) for part in path[len(base) :].split("/"))
    return None


def _json_object(text):
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _path_facts(bodies, include_secrets):
    facts = {}
    for path in sorted(bodies):
        body = bodies[path]
        relative = _relative(path)
        if body is None or relative is None or path.endswith("/"):
            continue
        if relative.startswith(_OWN_NAMES) or (is_secret_path(path) and not include_secrets):
            continue
        name = legacy_name(relative)
        text = body.decode("utf-8", "replace")
        if relative.rsplit("/", 1)[-1] in _COMMA_JOINED:
            facts[name] = ",".join(text.splitlines())
            continue
        facts[name] = text
        document = _json_object(text)
        for key, value in (document or {}).items():
            facts[name + "_" + _INVALID.sub("_", key.lower())] = value
    return facts


def _tag_facts(tags):
    """One name per tag; when two tags give one name, the tag already named so keeps it."""
    facts = {}
    unchanged_first = sorted(tags, key=lambda key: (_INVALID.search(key) is not None, key))
    for key in unchanged_first:
        name = legacy_name("tags/instance/" + key)
        if name not in facts:
            facts[name] = tags[key]
    return facts


def legacy_facts(bodies, snapshot, include_secrets=False, include_user_data=False):
    """The ``ansible_ec2_*`` facts for the snapshot ``snapshot`` whose bodies are ``bodies``."""
    facts = _path_facts(bodies, include_secrets)
    tags = snapshot.get("tags") or {}
    facts.update(_tag_facts(tags))
    facts[PREFIX + "instance_tags"] = dict(tags)
    facts[PREFIX + "instance_tags_keys"] = list(tags)
    for mac in snapshot.get("network_interfaces") or {}:
        facts.setdefault(legacy_name("network/interfaces/macs/{}/mac".format(mac)), mac)
    roles = snapshot.get("iam_role_names") or []
    if roles:
        facts[PREFIX + "iam_instance_profile_role"] = roles[0]
    if snapshot.get("region") is not None:
        facts[PREFIX + "placement_region"] = snapshot["region"]
    key = bodies.get("meta-data/public-keys/0/openssh-key")
    facts[PREFIX + "public_key"] = None if key is None else key.decode("utf-8", "replace")
    if include_user_data:
        user_data = snapshot.get("user_data")
        facts[PREFIX + "user_data"] = None if user_data is None else user_data["content"]
    return dict(sorted(facts.items()))
