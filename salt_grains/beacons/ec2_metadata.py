"""The ``ec2_metadata`` beacon: EC2 notices (spot interruption, rebalance, maintenance,
Auto Scaling lifecycle, tag changes) as events on the master's bus.

.. code-block:: yaml

    beacons:
      ec2_metadata:
        - interval: 5          # seconds between polls (AWS asks for 5 for spot notices)
        - kinds: [spot, rebalance]   # optional; default: every kind

Each notice fires once, tagged ``salt/beacon/<minion id>/ec2_metadata/<kind>``
(e.g. ``.../spot/interruption``). Connection settings come from the minion's
``ec2_metadata:`` section, as for the ``ec2`` grain. The loader may load this
file afresh, so the watchers live in the normally imported
``saltext.imds_ec2.beacon``. The loader imports this file by path under a
name of its own, so the import is absolute; mypy follows it relatively.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Tuple

if TYPE_CHECKING:
    from .. import beacon as _beacon
else:
    from saltext.imds_ec2 import beacon as _beacon

__opts__: Mapping[str, Any]  # injected by the Salt loader
__virtualname__ = "ec2_metadata"


def __virtual__() -> str:
    # Always loadable: off EC2 the beacon returns nothing after the grain's
    # short, remembered probe.
    return __virtualname__


def validate(config: Any) -> Tuple[bool, str]:
    """The beacon's config and the minion's ``ec2_metadata:`` section, checked."""
    return _beacon.validate(config, __opts__)  # noqa: F821 - set by the loader


def beacon(config: Any) -> List[Dict[str, Any]]:
    """One poll: an event per new notice, ``tag`` = its kind."""
    return _beacon.beacon(config, __opts__)  # noqa: F821 - set by the loader
