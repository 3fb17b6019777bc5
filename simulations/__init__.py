"""Simulations room: synthetic populations, federated runs, the demo pipeline and reports."""

import importlib
import logging
from typing import Any

from .errors import (
    DemoError,
    DeploymentError,
    FederationError,
    ServerStartError,
    SimulationError,
    SimulationsError,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Lazily imported names -> defining module (relative to this package).
_LAZY: dict[str, str] = {
    "DemoConfig": ".demo",
    "run_demo": ".demo",
    "PopulationConfig": ".synthetic",
    "write_population": ".synthetic",
    "run_federation": ".federation",
    "SimulationConfig": ".simulate",
    "run_simulation_task": ".simulate",
    "generate_labeled_messages": ".labeled",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DemoConfig",
    "DemoError",
    "DeploymentError",
    "FederationError",
    "PopulationConfig",
    "ServerStartError",
    "SimulationConfig",
    "SimulationError",
    "SimulationsError",
    "generate_labeled_messages",
    "run_demo",
    "run_federation",
    "run_simulation_task",
    "write_population",
]
