"""A self-contained ``salt-call --local`` setup, for trying the grains off EC2.

With the simulator (``python -m ec2_metadata_core simulate``) this lets you
run ``salt-call --local -c <confdir> grains.get ec2:region`` or a state on
any machine: everything Salt reads or writes stays under one directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional


def write_local_minion(
    root: Path, minion_id: str = "imds-local", ec2_metadata: Optional[Dict[str, Any]] = None
) -> Path:
    """Write ``root/conf/minion`` for ``salt-call --local``; return the config dir.

    ``ec2_metadata`` is the grains' section of the minion config (endpoint,
    include_secrets, ...). FQDN grains are off: they would resolve host names.
    """
    confdir = root / "conf"
    confdir.mkdir(parents=True, exist_ok=True)
    config: Dict[str, Any] = {
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
        config["ec2_metadata"] = ec2_metadata
    # JSON is YAML: Salt reads it as is.
    (confdir / "minion").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return confdir
