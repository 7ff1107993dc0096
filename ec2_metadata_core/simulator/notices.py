"""The words of the notices the simulator posts: EC2's spot actions and scheduled-event codes.

Apart from ``control.py``, which posts them, so the command line can offer
them as choices without loading the simulator (every ``dump`` builds that
command line).
"""

from __future__ import annotations

SPOT_ACTIONS = ("terminate", "stop", "hibernate")
# EC2 scheduled event codes, with the description IMDS gives each.
MAINTENANCE_CODES = {
    "instance-reboot": "scheduled reboot",
    "system-reboot": "scheduled reboot",
    "system-maintenance": "scheduled maintenance",
    "instance-retirement": "scheduled retirement",
    "instance-stop": "scheduled stop",
}
