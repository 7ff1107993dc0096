"""The ``ec2`` grain: minion config -> snapshot of the instance metadata -> grains.

Salt loads this file afresh on each grains refresh and then drops it from
``sys.modules``, so the work and the per-process state (the IMDS client, whose
token outlives refreshes) live in the normally imported ``saltext.imds_ec2.ec2``.
The loader imports this file by path under a name of its own, so the import
is absolute; mypy, which checks the source folder, follows it relatively.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping

if TYPE_CHECKING:
    from .. import ec2 as _ec2
else:
    from saltext.imds_ec2 import ec2 as _ec2

__opts__: Mapping[str, Any]  # injected by the Salt loader
__virtualname__ = "imds_ec2"


def __virtual__() -> str:
    # Always loadable: off EC2 the grain function itself returns nothing, after
    # a short, remembered probe (see saltext.imds_ec2.ec2).
    return __virtualname__


def ec2() -> Dict[str, Any]:
    """``ec2`` (the snapshot), ``ec2_tags``/``ec2_tags_safe`` (tags); ``{}`` off EC2 or failing."""
    return _ec2.grains(__opts__)  # noqa: F821 - set by the loader after import
