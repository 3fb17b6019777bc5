"""The per-field rules of an upload: catalogue, value shape, purpose, consent now.

:func:`check_fields` reports every refused field of one upload at once; the upload path
(``server.crud.upload``) stores nothing of an upload with any refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from consent import ConsentState, FieldCatalogue, Purpose, evaluate
from models import ProfileFieldIn

from ..errors import Refusal

#: Reason codes beyond ``consent.DecisionReason``.
INVALID_VALUE = "invalid_value"
DUPLICATE_FIELD = "duplicate_field"
#: Stand-in for names of uncatalogued fields in audit entries (they could hold anything).
UNCATALOGUED = "<uncatalogued>"


def check_fields(
    *,
    catalogue: FieldCatalogue,
    consent: ConsentState,
    fields: Sequence[ProfileFieldIn],
    purpose: Purpose,
    at: datetime,
) -> list[Refusal]:
    """Return every refusal for an upload (empty when all fields may be stored).

    Parameters
    ----------
    catalogue : FieldCatalogue
        The catalogue in force.
    consent : ConsentState
        The subject's consent.
    fields : Sequence[ProfileFieldIn]
        The uploaded fields.
    purpose : Purpose
        The purpose the upload declares.
    at : datetime
        The moment of the write.

    Returns
    -------
    list[Refusal]
        One refusal per refused field, in upload order.
    """
    refusals: list[Refusal] = []
    seen: set[str] = set()
    specs = catalogue.by_name  # built on each access: once per upload, not per field
    for field in fields:
        if field.name in seen:
            refusals.append(
                Refusal(field.name, DUPLICATE_FIELD, f"{field.name}: sent more than once")
            )
            continue
        seen.add(field.name)
        decision = evaluate(
            catalogue=catalogue, consent=consent, field=field.name, purpose=purpose, at=at
        )
        spec = specs.get(field.name)
        if spec is not None:
            problems = spec.value_problems(field.value)
            if problems:
                refusals.append(Refusal(field.name, INVALID_VALUE, "; ".join(problems)))
                continue
        if not decision.allowed:
            refusals.append(Refusal(field.name, decision.reason.value, decision.message))
    return refusals


def audit_name(name: str, catalogue: FieldCatalogue) -> str:
    """Return the field name as it may appear in the audit log.

    Parameters
    ----------
    name : str
        A field name as uploaded.
    catalogue : FieldCatalogue
        The catalogue in force.

    Returns
    -------
    str
        ``name`` when catalogued, else :data:`UNCATALOGUED` (an unknown name could hold
        anything, a raw identifier included).
    """
    return name if name in catalogue.by_name else UNCATALOGUED
