"""The policy check: whether a field may be stored or read for a purpose, now.

One function, ``evaluate``, used by the edge before anything leaves it and by the server on
every write and every read. It returns a ``Decision`` with a stable reason code rather than
raising, so callers can report every refused field at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .catalogue import FieldCatalogue
from .purposes import Purpose
from .records import ConsentState


class DecisionReason(StrEnum):
    """Why a field was allowed or refused; stable codes for APIs and reports."""

    ALLOWED = "allowed"
    FIELD_NOT_CATALOGUED = "field_not_catalogued"
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed_for_field"
    NO_CONSENT = "no_consent_for_purpose"
    SEPARATE_CONSENT_REQUIRED = "separate_consent_required"
    RENEWAL_REQUIRED = "consent_renewal_required"
    FIELD_SUPPRESSED = "field_suppressed"


_MESSAGES: dict[DecisionReason, str] = {
    DecisionReason.ALLOWED: "allowed",
    DecisionReason.FIELD_NOT_CATALOGUED: "the field is not in the field catalogue",
    DecisionReason.PURPOSE_NOT_ALLOWED: "the catalogue does not allow this field for the purpose",
    DecisionReason.NO_CONSENT: "the subject has no active consent for the purpose",
    DecisionReason.SEPARATE_CONSENT_REQUIRED: (
        "the field is sensitive and needs a separate consent for the purpose"
    ),
    DecisionReason.RENEWAL_REQUIRED: (
        "the consent was given under a notice version that a material notice replaced; "
        "it is paused until the subject renews it"
    ),
    DecisionReason.FIELD_SUPPRESSED: (
        "the field was deleted at the subject's request (self-service or rectification); "
        "it may not be stored again"
    ),
}


@dataclass(frozen=True)
class Decision:
    """Outcome of a policy check.

    Parameters
    ----------
    field : str
        Field name checked.
    purpose : Purpose
        Purpose checked.
    reason : DecisionReason
        ``ALLOWED`` or the first rule that refused.
    """

    field: str
    purpose: Purpose
    reason: DecisionReason

    @property
    def allowed(self) -> bool:
        """Whether the field may be used."""
        return self.reason is DecisionReason.ALLOWED

    @property
    def message(self) -> str:
        """A one-line explanation naming the field and purpose (no values)."""
        return f"{self.field} for {self.purpose.value}: {_MESSAGES[self.reason]}"


def evaluate(
    *,
    catalogue: FieldCatalogue,
    consent: ConsentState,
    field: str,
    purpose: Purpose,
    at: datetime,
) -> Decision:
    """Decide whether ``field`` may be stored or read for ``purpose`` at time ``at``.

    Rules, in order: the field must be catalogued; the catalogue must list the purpose for
    the field; the subject must not have deleted and forbidden the field; the subject's
    consent for the purpose must be granted at ``at`` (and, when ``consent`` applies notices,
    not paused for renewal by a material notice); a sensitive field additionally needs that
    grant to be a separate consent.

    Parameters
    ----------
    catalogue : FieldCatalogue
        The field catalogue in force.
    consent : ConsentState
        The subject's consent state.
    field : str
        Field name.
    purpose : Purpose
        Purpose of the store or read.
    at : datetime
        The moment of use (timezone-aware).

    Returns
    -------
    Decision
        The decision with its reason.
    """
    spec = catalogue.by_name.get(field)
    if spec is None:
        return Decision(field, purpose, DecisionReason.FIELD_NOT_CATALOGUED)
    if purpose not in spec.purposes:
        return Decision(field, purpose, DecisionReason.PURPOSE_NOT_ALLOWED)
    if consent.is_suppressed(field):
        return Decision(field, purpose, DecisionReason.FIELD_SUPPRESSED)
    if not consent.is_granted(purpose, at):
        if consent.needs_renewal(purpose, at):
            return Decision(field, purpose, DecisionReason.RENEWAL_REQUIRED)
        return Decision(field, purpose, DecisionReason.NO_CONSENT)
    if spec.needs_separate_consent and not consent.has_separate(purpose, at):
        return Decision(field, purpose, DecisionReason.SEPARATE_CONSENT_REQUIRED)
    return Decision(field, purpose, DecisionReason.ALLOWED)
