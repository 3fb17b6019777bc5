"""Processing purposes: the closed list every store and read must name.

The enum is what code refers to. What each purpose *means* (W3C DPV 2.x term, Chinese and
English labels and descriptions, legal basis, the PIPL Art. 16 ``necessary`` flag and the
"personalization off" flag) is data: ``consent/data/purposes.yaml``, loaded by
:mod:`consent.purpose_registry`, which refuses a list that disagrees with this enum. Adding a
purpose means adding it to both.
"""

from __future__ import annotations

from enum import StrEnum

from .errors import PurposeNotRegisteredError


class Purpose(StrEnum):
    """A declared processing purpose."""

    SERVICE_ROUTING = "service_routing"
    PERSONALIZED_SERVICE = "personalized_service"
    PROACTIVE_SERVICE = "proactive_service"
    MARKETING = "marketing"
    RISK_CONTROL = "risk_control"
    MODEL_TRAINING = "model_training"
    ANALYTICS = "analytics"


def parse_purpose(name: str) -> Purpose:
    """Return the purpose called ``name``.

    Parameters
    ----------
    name : str
        A purpose name such as ``"marketing"``.

    Returns
    -------
    Purpose
        The registered purpose.

    Raises
    ------
    PurposeNotRegisteredError
        If no purpose has that name; the message lists the known ones.
    """
    try:
        return Purpose(name)
    except ValueError:
        raise PurposeNotRegisteredError(name, known=[p.value for p in Purpose]) from None
