"""Peer: ec2-metadata 3.0.0 reading every public attribute it offers.

Usage (with the peers' venv, where ec2-metadata is installed):
    python peer_ec2_metadata.py BASE_URL

ec2-metadata hard-codes http://169.254.169.254; its ``EC2Metadata`` keeps the
base URLs in four instance attributes (``service_url``, ``metadata_url``,
``dynamic_url``, ``userdata_url``, read by every request and by the token
request), so this script points those of the ``ec2_metadata`` singleton at
the simulator before the first read. Nothing else of the library is changed:
its own urllib3 PoolManager, one token, one request per value.

What it reads: every public property of ``ec2_metadata``, every public
property of each ``NetworkInterface``, every tag value and every public key:
the same information a full snapshot holds. A read that fails (ec2-metadata
raises on some 404s, e.g. credentials looked up by instance profile name) is
counted and named, not retried. Prints one JSON line: what was read.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Dict, List

import guard

guard.install()

import ec2_metadata as library  # noqa: E402  (the guard goes in first)


def public_properties(cls: type) -> List[str]:
    """Public names that are values (plain or cached properties), not methods."""
    kinds = (property, functools.cached_property)
    return sorted(
        n for n in dir(cls) if not n.startswith("_") and isinstance(getattr(cls, n), kinds)
    )


def read_all(obj: Any, errors: List[str], prefix: str) -> Dict[str, Any]:
    values: Dict[str, Any] = {}
    for name in public_properties(type(obj)):
        try:
            values[name] = getattr(obj, name)
        except Exception as exc:  # the peer's failures are data here
            errors.append("{}{}: {}".format(prefix, name, type(exc).__name__))
    return values


def main() -> int:
    base = sys.argv[1].rstrip("/")
    metadata = library.ec2_metadata
    metadata.service_url = base + "/latest/"
    metadata.dynamic_url = metadata.service_url + "dynamic/"
    metadata.metadata_url = metadata.service_url + "meta-data/"
    metadata.userdata_url = metadata.service_url + "user-data/"
    errors: List[str] = []
    values = read_all(metadata, errors, "")
    interfaces = values.get("network_interfaces") or {}
    for mac, nic in interfaces.items():
        read_all(nic, errors, "network_interfaces[{}].".format(mac))
    tags = values.get("tags")
    tag_values = dict(tags) if tags is not None else {}
    keys = values.get("public_keys") or {}
    key_values = {name: key.openssh_key for name, key in keys.items()}
    print(
        json.dumps(
            {
                "attributes": len(values),
                "interfaces": len(interfaces),
                "tags": len(tag_values),
                "public_keys": len(key_values),
                "errors": errors,
                "region": values.get("region"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
