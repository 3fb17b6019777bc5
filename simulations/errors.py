"""Errors raised by the simulations room.

Hierarchy::

    SimulationsError
    ├── DemoError          the demo cannot run as asked (e.g. a foreign --workdir)
    ├── SimulationError    a simulation cannot run as asked (task, dataset)
    ├── FederationError    the simulated federation failed
    ├── ServerStartError   the server child process did not become healthy
    ├── DeploymentError    deployment credentials cannot be written as asked
    └── ScheduleError      scheduled training cannot go on (bad interval, a failed run)
"""

from __future__ import annotations


class SimulationsError(Exception):
    """Base class of every simulations-room error."""


class DemoError(SimulationsError):
    """The demo cannot run as asked; the message says what to change."""


class SimulationError(SimulationsError):
    """The simulation cannot run as asked; the message says what to change."""


class FederationError(SimulationsError):
    """The simulated federation could not run."""


class ServerStartError(SimulationsError):
    """The server process did not become healthy in time."""


class DeploymentError(SimulationsError):
    """Deployment credentials cannot be written as asked; the message says what to change."""


class ScheduleError(SimulationsError):
    """Scheduled training cannot go on; the message says why (a bad interval, a failed run)."""
