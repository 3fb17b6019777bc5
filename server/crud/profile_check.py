"""The per-field rules of an upload: catalogue, value shape, purpose, consent now.

:func:`check_fields` reports every refused field of one upload at once; the upload path
(``server.crud.upload``) stores nothing of an upload with any refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from consent import ConsentState, FieldCatalogue, Purpose, evaluate
from models import ProfileFieldIn
from models.tags import FEATURE_INFO
from privacy.pii_screen import pii_shapes

from ..errors import Refusal

#: Reason codes beyond ``consent.DecisionReason``.
INVALID_VALUE = "invalid_value"
DUPLICATE_FIELD = "duplicate_field"
PII_VALUE = "pii_value"
UNCATALOGUED_EXPLANATION = "uncatalogued_explanation"
COMPUTED_IN_FUTURE = "computed_in_future"
#: Reasons that say the upload is malformed (422), not that consent refused it (403).
VALUE_REASONS = frozenset(
    {INVALID_VALUE, DUPLICATE_FIELD, PII_VALUE, UNCATALOGUED_EXPLANATION, COMPUTED_IN_FUTURE}
)
#: How far ahead of the server's clock an edge's ``computed_at`` may be (clock skew).
MAX_CLOCK_SKEW = timedelta(minutes=5)


def value_refusal(field: ProfileFieldIn, at: datetime) -> Refusal | None:
    """Return why a field's explanation, text or time may not be stored, or ``None``.

    The explanation vocabulary is ``models.tags.FEATURE_INFO``, shared with the edge's tag
    rules: an item must name one of its features, with its labels or none. Every string
    that would be stored then passes the last-line identifier screen
    (:func:`privacy.pii_screen.pii_shapes`). A ``computed_at`` later than the server's
    clock plus :data:`MAX_CLOCK_SKEW` is refused: retention counts from it, so a field
    dated year 3000 would never be purged.

    Parameters
    ----------
    field : ProfileFieldIn
        One uploaded field (its value already checked against the catalogue).
    at : datetime
        The moment of the write.

    Returns
    -------
    Refusal or None
        The first problem found; messages name the field and rule, never the text.
    """
    if field.computed_at > at + MAX_CLOCK_SKEW:
        return Refusal(
            field.name,
            COMPUTED_IN_FUTURE,
            f"{field.name}: computed_at is more than 5 minutes ahead of the server's clock",
        )
    texts: list[str] = [field.value] if isinstance(field.value, str) else []
    for item in field.explanation:
        info = FEATURE_INFO.get(item.feature)
        if info is None or item.label_zh not in ("", info.label_zh) or (
            item.label_en not in ("", info.label_en)
        ):
            return Refusal(
                field.name,
                UNCATALOGUED_EXPLANATION,
                f"{field.name}: an explanation names an uncatalogued feature or label",
            )
        texts.extend((item.feature, item.label_zh, item.label_en))
    if any(pii_shapes(text) for text in texts):
        return Refusal(
            field.name,
            PII_VALUE,
            f"{field.name}: a value or label has the shape of a personal identifier",
        )
    return None
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
            problem = value_refusal(field, at)
            if problem is not None:
                refusals.append(problem)
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
