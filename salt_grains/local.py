"""A self-contained ``salt-call --local`` setup, for trying the grains off EC2.

With the simulator (``python -m ec2_metadata_core simulate``) this lets you
run ``salt-call --local -c <confdir> grains.get ec2:region`` or a state on
any machine: everything Salt reads or writes stays under one directory.

From a shell: ``python -m saltext.imds_ec2.local ROOT --endpoint URL``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import yaml

from ec2_metadata_core import config
from ec2_metadata_core.errors import ConfigError

from .options import SECTION, connection_settings, from_minion_opts


def write_local_minion(
    root: Path, minion_id: str = "imds-local", ec2_metadata: Optional[Dict[str, Any]] = None
) -> Path:
    """Write ``root/conf/minion`` for ``salt-call --local``; return the config dir.

    ``ec2_metadata`` is the grains' section of the minion config (endpoint,
    include_secrets, ...). FQDN grains are off: they would resolve host names.
    """
    confdir = root / "conf"
    confdir.mkdir(parents=True, exist_ok=True)
    # The directories a user writes into next (a state in srv/, pillar data).
    for where in ("srv", "pillar"):
        (root / where).mkdir(exist_ok=True)
    minion: Dict[str, Any] = {
        "id": minion_id,
        "file_client": "local",
        "root_dir": str(root),
        "cachedir": str(root / "cache"),
        "pki_dir": str(root / "pki"),
        "sock_dir": str(root / "sock"),
        "extension_modules": str(root / "extmods"),
        "file_roots": {"base": [str(root / "srv")]},
        "pillar_roots": {"base": [str(root / "pillar")]},
        "log_file": str(root / "minion.log"),
        "enable_fqdns_grains": False,
        "grains_cache": False,
    }
    if ec2_metadata is not None:
        minion["ec2_metadata"] = ec2_metadata
    # JSON is YAML: Salt reads it as is.
    (confdir / "minion").write_text(json.dumps(minion, indent=2) + "\n", encoding="utf-8")
    return confdir


def _section(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    """The ``ec2_metadata:`` section from the command line, validated as the grain will.

    Options named after a setting (``--endpoint``) go in first, ``--set`` after.
    """
    given = config.settings_in(vars(args))
    section = {name: value for name, value in given.items() if value is not None}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError("--set takes NAME=VALUE, not {!r}".format(item))
        section[name] = yaml.safe_load(value) if value else None
    connection_settings(from_minion_opts({SECTION: section}))
    return section or None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m saltext.imds_ec2.local",
        description="Write a salt-call --local setup under ROOT (config, cache, logs, "
        "file_roots all inside it) that reads EC2 metadata from ENDPOINT, e.g. the simulator "
        "started with 'python -m ec2_metadata_core simulate --port 1338'.",
        epilog="Then: salt-call --local -c ROOT/conf grains.get ec2:region",
    )
    parser.add_argument("root", type=Path, metavar="ROOT", help="directory to write into")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="IMDS base URL, e.g. http://127.0.0.1:1338 (default: the AWS SDK settings of "
        "the salt-call process, else http://169.254.169.254)",
    )
    parser.add_argument("--id", default="imds-local", help="minion ID (default: %(default)s)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another ec2_metadata option, e.g. include_secrets=true or probe_timeout=1 "
        "(repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        section = _section(args)
        confdir = write_local_minion(args.root.resolve(), args.id, section)
    except (ConfigError, OSError, yaml.YAMLError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print("{}: error: {}".format(parser.prog, message), file=sys.stderr)
        return 2
    print(confdir)
    print("run: salt-call --local -c {} grains.get ec2:region".format(confdir), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
