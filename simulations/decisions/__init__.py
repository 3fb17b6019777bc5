"""Offline evaluation of routing decision policies (``fedprofile simulate --task decisions``).

A synthetic population with the profiles routing reads, contacts with masked Chinese
messages, a text classifier for the live signals, the human fallback fitted on held-out
contacts, and a discrete-event contact-outcome model that serves every policy's routing of
the same contacts. ``docs/decision-simulation.md`` explains the model and its parameters.
"""

from .contacts import Contact, ContactParams, draw_contacts
from .params import OutcomeParams
from .queueing import CentreRun, ContactOutcome, simulate_centre
from .routers import PolicyRouter, Router, Routing, load_routing_policy
from .run import DecisionSimulationConfig, run_decision_simulation

__all__ = [
    "CentreRun",
    "Contact",
    "ContactOutcome",
    "ContactParams",
    "DecisionSimulationConfig",
    "OutcomeParams",
    "PolicyRouter",
    "Router",
    "Routing",
    "draw_contacts",
    "load_routing_policy",
    "run_decision_simulation",
    "simulate_centre",
]
