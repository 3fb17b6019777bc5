"""Consent records: append-only events and the state they fold into.

A subject's consent for a purpose is whatever its latest event (by time of occurrence) says.
Records are never edited; a withdrawal is a new event. ``ConsentState`` answers "may this
purpose be used for this subject at time t?" from the events, the published notices (a
material notice pauses older grants until renewed) and the fields the subject forbade, so the
edge and the server reach the same answer from the same inputs. Notices and suppressed fields
can only narrow what the events grant, never widen it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from .purposes import Purpose
from .times import ConsentTime

if TYPE_CHECKING:
    from .notices import NoticeRegistry

#: Pseudonyms are ``ps_`` + 64 lower-case hex digits (HMAC-SHA256); anything else is refused.
PSEUDONYM_PATTERN = r"^ps_[0-9a-f]{64}$"


class ConsentStatus(StrEnum):
    """Status carried by a consent event (DPV consent-status vocabulary)."""

    GRANTED = "granted"
    WITHDRAWN = "withdrawn"  # by the subject (dpv:ConsentWithdrawn)
    REVOKED = "revoked"  # by the business (dpv:ConsentRevoked)
    EXPIRED = "expired"  # dpv:ConsentExpired


class ConsentEvent(BaseModel):
    """One append-only consent event.

    Parameters
    ----------
    subject : str
        The subject's pseudonym (``ps_`` + 64 hex digits).
    purpose : Purpose
        The purpose the event is about.
    status : ConsentStatus
        The status from this moment on.
    occurred_at : datetime
        When the subject (or business) acted; timezone-aware.
    notice_version : str
        Version of the privacy notice shown.
    channel : str
        Channel where consent was collected (web, app, desk, sms, social).
    separate : bool
        Whether this is a separate consent (PIPL Art. 29), needed for sensitive fields.
    expires_at : datetime or None
        When a grant lapses, if it does.
    evidence_hash : str or None
        Hex SHA-256 of the collection evidence kept at the channel.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str = Field(pattern=PSEUDONYM_PATTERN)
    purpose: Purpose
    status: ConsentStatus
    occurred_at: ConsentTime
    notice_version: str = Field(min_length=1, max_length=40)
    channel: str = Field(min_length=1, max_length=20)
    separate: bool = False
    expires_at: ConsentTime | None = None
    evidence_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class ConsentState:
    """The current consent of one subject, folded from its events.

    Parameters
    ----------
    events : Iterable[ConsentEvent]
        The subject's events in any order; later occurrence wins, and for equal times the
        later position in ``events`` wins.
    notices : NoticeRegistry or None
        Published notice versions; with them, a grant given under a version older than a
        material notice for its purpose is paused until renewed (``consent.notices``).
        ``None`` applies no notice rule.
    suppressed : Iterable[str]
        Fields the subject deleted and forbade (self-service): never stored or used again.
    """

    def __init__(
        self,
        events: Iterable[ConsentEvent] = (),
        *,
        notices: NoticeRegistry | None = None,
        suppressed: Iterable[str] = (),
    ) -> None:
        self._events: list[ConsentEvent] = sorted(events, key=lambda e: e.occurred_at)
        self._notices = notices
        self._suppressed = frozenset(suppressed)

    @property
    def events(self) -> tuple[ConsentEvent, ...]:
        """The events, oldest first."""
        return tuple(self._events)

    @property
    def notices(self) -> NoticeRegistry | None:
        """The notice registry applied, if any."""
        return self._notices

    @property
    def suppressed_fields(self) -> frozenset[str]:
        """Fields the subject deleted and forbade."""
        return self._suppressed

    def with_context(
        self,
        *,
        notices: NoticeRegistry | None = None,
        suppressed: Iterable[str] = (),
    ) -> ConsentState:
        """Return the same events with another notice registry and suppressed fields.

        Parameters
        ----------
        notices : NoticeRegistry or None
            The registry to apply (``None``: no notice rule).
        suppressed : Iterable[str]
            The suppressed fields.

        Returns
        -------
        ConsentState
            A new state; this one is unchanged.
        """
        state = ConsentState(notices=notices, suppressed=suppressed)
        state._events = list(self._events)
        return state

    def latest(self, purpose: Purpose, at: datetime) -> ConsentEvent | None:
        """Return the latest event for ``purpose`` that occurred at or before ``at``."""
        found: ConsentEvent | None = None
        for event in self._events:
            if event.occurred_at > at:
                break
            if event.purpose is purpose:
                found = event
        return found

    def _grant(self, purpose: Purpose, at: datetime) -> ConsentEvent | None:
        """Return the latest event if it is an unexpired grant at ``at`` (no notice rule)."""
        event = self.latest(purpose, at)
        if event is None or event.status is not ConsentStatus.GRANTED:
            return None
        if event.expires_at is not None and event.expires_at <= at:
            return None
        return event

    def needs_renewal(self, purpose: Purpose, at: datetime) -> bool:
        """Whether ``purpose`` is granted but paused at ``at`` by a material notice.

        Parameters
        ----------
        purpose : Purpose
            Purpose to check.
        at : datetime
            The moment of use; timezone-aware.

        Returns
        -------
        bool
            True only if the latest event is an unexpired grant given under a notice version
            older than a material notice for the purpose (and notices are applied).
        """
        grant = self._grant(purpose, at)
        return (
            grant is not None
            and self._notices is not None
            and self._notices.needs_renewal(grant, at)
        )

    def is_granted(self, purpose: Purpose, at: datetime) -> bool:
        """Whether ``purpose`` is granted, unexpired and not paused at time ``at``.

        Parameters
        ----------
        purpose : Purpose
            Purpose to check.
        at : datetime
            The moment of use; timezone-aware.

        Returns
        -------
        bool
            True only if the latest event is a grant that has not expired by ``at`` and, when
            notices are applied, does not need renewal.
        """
        grant = self._grant(purpose, at)
        if grant is None:
            return False
        return self._notices is None or not self._notices.needs_renewal(grant, at)

    def has_separate(self, purpose: Purpose, at: datetime) -> bool:
        """Whether ``purpose`` is granted at ``at`` by a separate consent (PIPL Art. 29)."""
        event = self.latest(purpose, at)
        return self.is_granted(purpose, at) and event is not None and event.separate

    def is_suppressed(self, field: str) -> bool:
        """Whether the subject deleted ``field`` and forbade its use."""
        return field in self._suppressed

    def granted_purposes(self, at: datetime) -> frozenset[Purpose]:
        """Return every purpose granted (and not paused) at ``at``."""
        return frozenset(p for p in Purpose if self.is_granted(p, at))


def most_restrictive(states: Iterable[ConsentState], purpose: Purpose, at: datetime) -> bool:
    """Whether ``purpose`` is granted in *every* state: merging never widens consent.

    Parameters
    ----------
    states : Iterable[ConsentState]
        The consent states of identities being merged.
    purpose : Purpose
        Purpose to check.
    at : datetime
        The moment of use.

    Returns
    -------
    bool
        True only if each state grants the purpose (and at least one state was given).
    """
    states = list(states)
    return bool(states) and all(s.is_granted(purpose, at) for s in states)
