"""The ``imds_ec2_enroll`` master engine: accept autoscaled minions on proof of identity.

.. code-block:: yaml

    # /etc/salt/master.d/imds-enroll.conf
    engines:
      - imds_ec2_enroll:
          accounts: ["123456789012"]   # required
          max_age: 600                 # seconds after pendingTime a proof is good for

It reads the proofs salt-api's webhook puts on the master's bus
(``POST /hook/imds_ec2/enroll``) and accepts a pending key when the proof
holds; see ``saltext.imds_ec2.enroll`` for the rules and docs/identity.md for
the setup. The loader imports this file by path under a name of its own, so
the import is absolute; mypy follows it relatively.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from .. import enroll as _enroll
else:
    from saltext.imds_ec2 import enroll as _enroll

__opts__: Mapping[str, Any]  # injected by the Salt loader
__virtualname__ = "imds_ec2_enroll"


def __virtual__() -> str:
    return __virtualname__


def start(**config: Any) -> None:
    """Serve until the master stops (Salt restarts an engine that returns)."""
    _enroll.serve(__opts__, config)  # noqa: F821 - set by the loader
