"""Peer: amazon.aws.ec2_metadata_facts, its module file run as Ansible runs a module.

Usage (with a Python that has ansible-core):
    python peer_amazon_aws.py MODULE_FILE BASE_URL

The module keeps the IMDS URLs as class attributes of ``Ec2Metadata``
(``ec2_metadata_token_uri``, ``ec2_metadata_uri``, ...), all starting with
http://169.254.169.254. This harness loads the unmodified module file,
rewrites the host part of those class attributes to ``BASE_URL``, hands the
module its (empty) arguments the way AnsiballZ does (``_ANSIBLE_ARGS`` and the
serialization profile in ``ansible.module_utils.basic``) and calls ``main()``.
Everything the module does from there is its own: ``AnsibleModule`` setup,
``fetch_url`` per request, the recursive walk, the JSON result on stdout.
What it does not pay: the controller (``ansible`` itself, AnsiballZ packing,
the fork/exec of the module), which the end-to-end rows measure separately.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import guard

guard.install()

from ansible.module_utils import basic  # noqa: E402  (the guard goes in first)

REAL_BASE = "http://169.254.169.254"


def main() -> int:
    module_file, base = sys.argv[1], sys.argv[2].rstrip("/")
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": {}}).encode()
    basic._ANSIBLE_PROFILE = "legacy"
    spec = importlib.util.spec_from_file_location("ec2_metadata_facts", module_file)
    if spec is None or spec.loader is None:
        raise SystemExit("cannot load {}".format(module_file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = module.Ec2Metadata
    rewritten = 0
    for name, value in list(vars(cls).items()):
        if name.endswith("_uri") and isinstance(value, str) and value.startswith(REAL_BASE):
            setattr(cls, name, base + value[len(REAL_BASE) :])
            rewritten += 1
    left = [n for n, v in vars(cls).items() if isinstance(v, str) and "169.254.169.254" in v]
    if not rewritten or left:
        raise SystemExit("Ec2Metadata URL constants not as expected: {}".format(left or "none"))
    module.main()  # prints the result and exits, as a module does
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
