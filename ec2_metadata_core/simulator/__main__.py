"""``python -m ec2_metadata_core.simulator``: the same as ``ec2-metadata-core simulate``."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
