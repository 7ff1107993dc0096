"""IMDSv2 simulator: a local instance metadata service for tests and demos off EC2.

Exports load lazily so the pytest plugin (imported in every pytest run of every
user who installs the package) does not pull in ``http.server``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

if TYPE_CHECKING:
    from .cli import main
    from .faults import Fault
    from .instance import DEFAULT_INSTANCE_PATH, load_instance
    from .scenarios import SCENARIOS, scenario
    from .server import Simulator
    from .stats import Stats

__all__ = [
    "DEFAULT_INSTANCE_PATH",
    "SCENARIOS",
    "Fault",
    "Simulator",
    "Stats",
    "load_instance",
    "main",
    "scenario",
]

_HOMES: Dict[str, str] = {
    "DEFAULT_INSTANCE_PATH": "instance",
    "Fault": "faults",
    "Simulator": "server",
    "Stats": "stats",
    "load_instance": "instance",
    "main": "cli",
    "SCENARIOS": "scenarios",
    "scenario": "scenarios",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
