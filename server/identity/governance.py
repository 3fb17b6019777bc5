"""Officers' identity decisions: merge two pseudonyms, detach one (split), undo; all audited.

Each decision is an ``IdentityOverride`` row (who, why, when) and a recomputation of the
persons it touches (``server.identity.graph.relink``), committed with its audit entries in
one transaction. Undo marks the row undone (it stays as evidence) and recomputes. Consent is
never copied or changed by a decision: a person's reads take the most restrictive consent of
its pseudonyms (``server.profiles``), so a split restores each pseudonym's own consent as it
was, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from ..audit.append import lock_chain
from ..audit.events import AuditAction, AuditOutcome
from ..audit.record import AuditRecord
from ..audit.sink import AuditSink
from ..errors import IdentityDecisionError, NotFoundError
from ..principal import Principal
from ..tables.identity import IdentityOverride
from ..tables.subject import Subject
from .graph import DETACH, MERGE, members_of, relink
from .tokens import link_records


@dataclass(frozen=True)
class Decision:
    """Outcome of an officer's identity decision.

    Parameters
    ----------
    override_id : int
        The decision's row (for undo).
    linked, unlinked : int
        Pseudonyms whose person changed.
    """

    override_id: int
    linked: int
    unlinked: int


def _require_subject(session: Session, subject: str) -> None:
    if session.get(Subject, subject) is None:
        raise NotFoundError(kind="subject", ref=subject)


def _decide(
    *, session: Session, override: IdentityOverride, principal: Principal, audit: AuditSink,
    hub_limit: int, at: datetime, action: AuditAction, reason: str,
) -> Decision:  # fmt: skip
    """Store (or update) a decision, relink around it, audit, commit."""
    session.add(override)
    session.flush()
    seeds = set(members_of(session, override.subject))
    if override.other is not None:
        seeds |= set(members_of(session, override.other))
    change = relink(session, seeds, hub_limit=hub_limit, at=at)
    assert override.id is not None
    subjects = [override.subject] + ([override.other] if override.other else [])
    records = [
        AuditRecord(
            actor=principal.actor, role=principal.role.value, action=action, purpose=None,
            subject=subject, outcome=AuditOutcome.ACCEPTED,
            detail={"override": override.id, "decision": override.action}, at=at,
        )
        for subject in subjects
    ]  # fmt: skip
    records += link_records(
        change, actor=principal.actor, role=principal.role.value, at=at, reason=reason
    )
    audit.record_many(records)
    session.commit()
    return Decision(override.id, len(change.linked), len(change.unlinked))


def merge_subjects(
    *, session: Session, subject: str, other: str, reason: str, principal: Principal,
    audit: AuditSink, hub_limit: int, at: datetime,
) -> Decision:  # fmt: skip
    """Merge two pseudonyms into one person whatever their tokens say; audit; commit.

    Parameters
    ----------
    session : Session
        A session.
    subject, other : str
        The pseudonyms (distinct, both known to the server).
    reason : str
        The officer's reason (kept with the decision; not a place for personal data).
    principal : Principal
        The officer.
    audit : AuditSink
        Receives ``identity.merge`` for both pseudonyms and the link entries.
    hub_limit : int
        The server's hub limit.
    at : datetime
        When.

    Returns
    -------
    Decision
        The decision's id and what changed.

    Raises
    ------
    IdentityDecisionError
        If the two pseudonyms are the same.
    NotFoundError
        If the server holds nothing about one of them.
    """
    if subject == other:
        raise IdentityDecisionError("a merge needs two different pseudonyms")
    lock_chain(session=session)
    _require_subject(session, subject)
    _require_subject(session, other)
    override = IdentityOverride(
        action=MERGE, subject=subject, other=other, officer=principal.actor, reason=reason,
        created_at=at,
    )  # fmt: skip
    return _decide(session=session, override=override, principal=principal, audit=audit,
                   hub_limit=hub_limit, at=at, action=AuditAction.IDENTITY_MERGE,
                   reason=MERGE)  # fmt: skip


def detach_subject(
    *, session: Session, subject: str, reason: str, principal: Principal, audit: AuditSink,
    hub_limit: int, at: datetime,
) -> Decision:  # fmt: skip
    """Detach a pseudonym from every automatic link (split it off its person); audit; commit.

    Officer merges naming the pseudonym still apply; undo the merge to separate those.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym.
    reason : str
        The officer's reason.
    principal : Principal
        The officer.
    audit : AuditSink
        Receives ``identity.detach`` and the unlink entries.
    hub_limit : int
        The server's hub limit.
    at : datetime
        When.

    Returns
    -------
    Decision
        The decision's id and what changed.

    Raises
    ------
    NotFoundError
        If the server holds nothing about the pseudonym.
    """
    lock_chain(session=session)
    _require_subject(session, subject)
    override = IdentityOverride(
        action=DETACH, subject=subject, officer=principal.actor, reason=reason, created_at=at
    )
    return _decide(session=session, override=override, principal=principal, audit=audit,
                   hub_limit=hub_limit, at=at, action=AuditAction.IDENTITY_DETACH,
                   reason=DETACH)  # fmt: skip


def undo_decision(
    *, session: Session, override_id: int, principal: Principal, audit: AuditSink,
    hub_limit: int, at: datetime,
) -> Decision:  # fmt: skip
    """Undo a merge or detach decision: it stops applying; persons are recomputed; commit.

    Parameters
    ----------
    session : Session
        A session.
    override_id : int
        The decision.
    principal : Principal
        The officer.
    audit : AuditSink
        Receives ``identity.undo`` and the link / unlink entries.
    hub_limit : int
        The server's hub limit.
    at : datetime
        When.

    Returns
    -------
    Decision
        What changed.

    Raises
    ------
    NotFoundError
        If there is no such decision (erased with its pseudonym, or never made).
    IdentityDecisionError
        If it was already undone.
    """
    lock_chain(session=session)
    override = session.get(IdentityOverride, override_id)
    if override is None:
        raise NotFoundError(kind="identity decision", ref=str(override_id))
    if override.undone_at is not None:
        raise IdentityDecisionError("this identity decision was already undone")
    override.undone_at = at
    override.undone_by = principal.actor
    return _decide(session=session, override=override, principal=principal, audit=audit,
                   hub_limit=hub_limit, at=at, action=AuditAction.IDENTITY_UNDO,
                   reason="undo")  # fmt: skip


def decisions_about(session: Session, subjects: list[str]) -> list[IdentityOverride]:
    """Return every decision naming one of ``subjects``, newest first (undone ones too)."""
    stmt = (
        select(IdentityOverride)
        .where(
            col(IdentityOverride.subject).in_(subjects) | col(IdentityOverride.other).in_(subjects)
        )
        .order_by(col(IdentityOverride.id).desc())
    )
    return list(session.exec(stmt).all())
