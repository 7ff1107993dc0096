"""The ``ec2`` grain: minion config -> snapshot of the instance metadata -> grains.

Salt loads this file afresh on each grains refresh and then drops it from
``sys.modules``, so the work and the per-process state (the IMDS client, whose
token outlives refreshes) live in the normally imported ``salt_grains.ec2``.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

from salt_grains import ec2 as _ec2

__opts__: Mapping[str, Any]  # injected by the Salt loader


def ec2() -> Dict[str, Any]:
    """``{"ec2": snapshot, "ec2_tags": sanitised tags}``, or ``{}`` off EC2 or on failure."""
    return _ec2.grains(__opts__)  # noqa: F821 - set by the loader after import
