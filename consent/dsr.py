"""Data-subject requests (DSR): request types, the state machine, deadlines, the edge feed.

A request moves through ``received → verifying → approved → in_progress → completed``, or ends
``rejected`` with a stated reason (PIPL Art. 50: a refusal must give reasons). Every
transition is one call of :func:`advance`, a pure function: it takes the request's current
:class:`RequestStatus` and returns the next one, or raises :class:`DSRTransitionError`
naming the rule that was broken. The server persists the result and audits it; nothing here
reads a clock, a database or a setting.

Rules
-----
- Due date: ``received_at + due_days`` (default 15 calendar days, configurable). PIPL only
  says "timely"; GB/T 35273 answers within 30 days and GDPR Art. 12(3) within one month, so
  15 days meets both with room for a second approval.
- Erasure needs approvals from **two different officers**: the first approval keeps the
  request in ``verifying``; a second approval by the same officer is refused; the second
  distinct officer's approval moves it to ``approved``. Other requests need one approval.
- Rejection needs a reason of 3-500 characters (say why, not who: no personal data).
- ``completed`` and ``rejected`` are final.

The module also holds the wire records of the edge's subject-event feed
(``GET /api/v1/edges/me/subject-events``): what the server tells every edge about
withdrawals, erasures, restrictions and suppressed fields, so both ends parse one shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import ConsentError
from .records import PSEUDONYM_PATTERN, ConsentEvent
from .times import ConsentTime

#: Days between receipt and due date unless configured otherwise.
DEFAULT_DUE_DAYS = 15
#: Shortest and longest rejection reason accepted.
MIN_REASON_LENGTH = 3
MAX_REASON_LENGTH = 500


class RequestType(StrEnum):
    """What the subject asks for."""

    ACCESS = "access"  # access and export (PIPL Art. 45; GDPR Arts. 15, 20)
    RECTIFY = "rectify"  # correct or delete one field (PIPL Art. 46; GDPR Art. 16)
    ERASE = "erase"  # delete everything (PIPL Art. 47; GDPR Art. 17)
    RESTRICT = "restrict"  # keep but do not use (PIPL Art. 44; GDPR Art. 18)
    LIFT_RESTRICTION = "lift_restriction"  # end an earlier restriction


class RequestState(StrEnum):
    """Where a request stands."""

    RECEIVED = "received"
    VERIFYING = "verifying"
    APPROVED = "approved"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"


class RequestAction(StrEnum):
    """What an officer (or the executing server) does to a request."""

    VERIFY = "verify"  # received -> verifying: identity and scope are being checked
    APPROVE = "approve"  # verifying -> approved (erasure: two different officers)
    REJECT = "reject"  # received | verifying | approved -> rejected, with a reason
    START = "start"  # approved -> in_progress: execution begins
    COMPLETE = "complete"  # in_progress -> completed: execution finished


#: States no action leaves.
FINAL_STATES = frozenset({RequestState.COMPLETED, RequestState.REJECTED})

#: The state each action requires and the state it leads to (approve is special-cased).
_MOVES: Mapping[RequestAction, tuple[frozenset[RequestState], RequestState]] = {
    RequestAction.VERIFY: (frozenset({RequestState.RECEIVED}), RequestState.VERIFYING),
    RequestAction.APPROVE: (frozenset({RequestState.VERIFYING}), RequestState.APPROVED),
    RequestAction.REJECT: (
        frozenset({RequestState.RECEIVED, RequestState.VERIFYING, RequestState.APPROVED}),
        RequestState.REJECTED,
    ),
    RequestAction.START: (frozenset({RequestState.APPROVED}), RequestState.IN_PROGRESS),
    RequestAction.COMPLETE: (frozenset({RequestState.IN_PROGRESS}), RequestState.COMPLETED),
}


class DSRTransitionError(ConsentError):
    """A request transition that the rules refuse.

    Parameters
    ----------
    message : str
        One line naming the rule (states, action, counts; never personal data).
    code : str
        Stable reason code: ``invalid_transition``, ``duplicate_approval`` or
        ``reason_required``.
    """

    def __init__(self, message: str, *, code: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Approval:
    """One officer's approval.

    Parameters
    ----------
    officer : str
        Stable id of the approving officer: the audit log's name for them
        (``compliance_officer:<holder name>``), never an e-mail or phone number.
    at : datetime
        When they approved.
    """

    officer: str
    at: datetime


def required_approvals(request_type: RequestType) -> int:
    """Return how many different officers must approve a request of this type.

    Parameters
    ----------
    request_type : RequestType
        The request's type.

    Returns
    -------
    int
        2 for erasure, 1 otherwise.
    """
    return 2 if request_type is RequestType.ERASE else 1


def due_date(received_at: datetime, *, due_days: int = DEFAULT_DUE_DAYS) -> datetime:
    """Return when a request received at ``received_at`` must be answered.

    Parameters
    ----------
    received_at : datetime
        Receipt time (timezone-aware).
    due_days : int
        Calendar days allowed (at least 1).

    Returns
    -------
    datetime
        ``received_at + due_days`` days.

    Raises
    ------
    ValueError
        If ``received_at`` is naive or ``due_days`` is below 1.
    """
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    if due_days < 1:
        raise ValueError("due_days must be at least 1")
    return received_at + timedelta(days=due_days)


@dataclass(frozen=True)
class RequestStatus:
    """The state machine's view of one request.

    Parameters
    ----------
    request_type : RequestType
        What is asked.
    state : RequestState
        Where it stands.
    received_at : datetime
        When it was received.
    due_at : datetime
        When it must be answered.
    approvals : tuple[Approval, ...]
        Approvals given so far, oldest first.
    rejection_reason : str or None
        Why it was rejected (set only in ``rejected``).
    """

    request_type: RequestType
    state: RequestState
    received_at: datetime
    due_at: datetime
    approvals: tuple[Approval, ...] = ()
    rejection_reason: str | None = None

    @classmethod
    def new(
        cls, *, request_type: RequestType, received_at: datetime, due_days: int = DEFAULT_DUE_DAYS
    ) -> RequestStatus:
        """Return a freshly received request.

        Parameters
        ----------
        request_type : RequestType
            What is asked.
        received_at : datetime
            Receipt time (timezone-aware).
        due_days : int
            Calendar days until it is due.

        Returns
        -------
        RequestStatus
            The request in state ``received``.

        Raises
        ------
        ValueError
            If ``received_at`` is naive or ``due_days`` is below 1.
        """
        due = due_date(received_at, due_days=due_days)
        return cls(request_type, RequestState.RECEIVED, received_at, due)

    @property
    def is_final(self) -> bool:
        """Whether no further transition is possible."""
        return self.state in FINAL_STATES

    def is_overdue(self, at: datetime) -> bool:
        """Whether the request is still open after its due date at ``at``."""
        return not self.is_final and at > self.due_at

    def allowed_actions(self) -> frozenset[RequestAction]:
        """Return the actions the current state admits."""
        return frozenset(a for a, (sources, _) in _MOVES.items() if self.state in sources)


def _check_reason(reason: str | None) -> str:
    """Return the stripped rejection reason, or raise when it is missing or too long."""
    text = (reason or "").strip()
    if not MIN_REASON_LENGTH <= len(text) <= MAX_REASON_LENGTH:
        raise DSRTransitionError(
            f"a rejection needs a reason of {MIN_REASON_LENGTH}-{MAX_REASON_LENGTH} characters "
            "(PIPL Art. 50)",
            code="reason_required",
        )
    return text


def advance(
    status: RequestStatus,
    *,
    action: RequestAction,
    officer: str,
    at: datetime,
    reason: str | None = None,
) -> RequestStatus:
    """Apply ``action`` to a request and return its next status (pure).

    Parameters
    ----------
    status : RequestStatus
        The current status.
    action : RequestAction
        What is done.
    officer : str
        Stable id of whoever acts (an approval records it).
    at : datetime
        When it is done (timezone-aware).
    reason : str or None
        Required for ``reject``: why (3-500 characters, no personal data).

    Returns
    -------
    RequestStatus
        The new status. An erasure's first approval returns a status still in
        ``verifying`` with one approval recorded.

    Raises
    ------
    DSRTransitionError
        ``invalid_transition`` if the state does not admit the action; ``duplicate_approval``
        if the same officer approves twice; ``reason_required`` for a rejection without a
        usable reason.
    ValueError
        If ``at`` is naive or ``officer`` is empty.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    if not officer:
        raise ValueError("officer must be a non-empty id")
    sources, target = _MOVES[action]
    if status.state not in sources:
        raise DSRTransitionError(
            f"cannot {action.value} a request in state {status.state.value}; allowed here: "
            + (", ".join(sorted(a.value for a in status.allowed_actions())) or "nothing"),
            code="invalid_transition",
        )
    if action is RequestAction.REJECT:
        return replace(status, state=target, rejection_reason=_check_reason(reason))
    if action is RequestAction.APPROVE:
        if any(a.officer == officer for a in status.approvals):
            raise DSRTransitionError(
                "this officer already approved the request; a second approval must come from "
                "a different compliance officer",
                code="duplicate_approval",
            )
        approvals = (*status.approvals, Approval(officer, at))
        needed = required_approvals(status.request_type)
        next_state = target if len(approvals) >= needed else status.state
        return replace(status, state=next_state, approvals=approvals)
    return replace(status, state=target)


class Rectification(BaseModel):
    """What a rectification request asks: a corrected value for one field, or its deletion.

    Parameters
    ----------
    field : str
        The catalogued field name.
    value : bool or int or float or str or None
        The corrected value (``None`` with ``delete=True``).
    delete : bool
        Delete the field instead of correcting it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(min_length=1, max_length=80)
    value: bool | int | float | str | None = None
    delete: bool = False

    @model_validator(mode="after")
    def _value_or_delete(self) -> Rectification:
        if self.delete == (self.value is not None):
            raise ValueError("give either a corrected 'value' or 'delete': true, not both")
        return self


# ------------------------------------------------------------------ edge feed (wire records)


class SubjectEventKind(StrEnum):
    """What a subject event tells the edges."""

    CONSENT = "consent"  # a consent event recorded elsewhere (another edge, self-service)
    ERASURE = "erasure"  # delete every row of the subject (matched by salted hash)
    RESTRICTION = "restriction"  # keep the subject but stop using it
    RESTRICTION_LIFTED = "restriction_lifted"  # the subject may be used again
    FIELD_SUPPRESSED = "field_suppressed"  # never upload this field of this subject again


def erasure_hash(salt: str, subject: str) -> str:
    """Return ``sha256(bytes.fromhex(salt) || pseudonym)`` as hex (erasure matching).

    Parameters
    ----------
    salt : str
        Hex salt carried by the erasure event.
    subject : str
        A pseudonym.

    Returns
    -------
    str
        64 hex digits.
    """
    return hashlib.sha256(bytes.fromhex(salt) + subject.encode("ascii")).hexdigest()


class SubjectEventWire(BaseModel):
    """One event of the feed.

    Parameters
    ----------
    kind : SubjectEventKind
        What happened.
    occurred_at : datetime
        When the server recorded it.
    subject : str or None
        The pseudonym (absent for erasures: the server no longer holds it).
    subject_hash, hash_salt : str or None
        For erasures: ``erasure_hash(hash_salt, pseudonym)``; the edge hashes its own
        pseudonyms with ``hash_salt`` to find the erased one.
    field : str or None
        For ``field_suppressed``: the field name.
    reason : str or None
        Why (``rectified``, ``deleted_by_subject``...; a code, never a value).
    consent : ConsentEvent or None
        For ``consent``: the event to append to the edge's consent records.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SubjectEventKind
    occurred_at: ConsentTime
    subject: str | None = Field(default=None, pattern=PSEUDONYM_PATTERN)
    subject_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    hash_salt: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    field: str | None = Field(default=None, max_length=80)
    reason: str | None = Field(default=None, max_length=40)
    consent: ConsentEvent | None = None

    def matches(self, subject: str) -> bool:
        """Whether this event concerns ``subject`` (by pseudonym, or by erasure hash)."""
        if self.subject is not None:
            return self.subject == subject
        if self.subject_hash is None or self.hash_salt is None:
            return False
        return erasure_hash(self.hash_salt, subject) == self.subject_hash


class SubjectEventPage(BaseModel):
    """One page of the feed.

    Parameters
    ----------
    events : list[SubjectEventWire]
        Events in the order the server recorded them.
    cursor : str
        Opaque position after the last event; pass it as ``after`` next time.
    more : bool
        Whether more events are waiting beyond this page.
    """

    model_config = ConfigDict(extra="forbid")

    events: list[SubjectEventWire]
    cursor: str
    more: bool = False
