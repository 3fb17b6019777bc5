"""Edges' identity tokens in, persons out: record a batch, relink, audit, commit.

A pseudonym's tokens are taken only while it has consent for at least one purpose (linking
serves those purposes; without any there is nothing to link for) and is neither restricted
nor erased. New pairs are stored, the persons around them are recomputed
(``server.identity.graph.relink``) and every change of membership is audited with its
evidence: the kinds and prefixes of the shared tokens, never an identifier.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlmodel import Session

from models import IdentityTokenBatch, IdentityTokenResult

from ..audit.append import lock_chain
from ..audit.events import AuditAction, AuditOutcome
from ..audit.record import AuditRecord
from ..audit.sink import AuditSink
from ..crud.consent import consent_states
from ..crud.restriction import restricted_among
from ..crud.subject import touch_subjects
from ..crud.tombstone import tombstones_of
from ..principal import Principal
from ..tables.identity import IdentityToken
from .graph import Relink, relink

logger = logging.getLogger(__name__)

_TOKEN = IdentityToken.metadata.tables[IdentityToken.__tablename__]


def linkable_subjects(session: Session, subjects: Sequence[str], *, at: datetime) -> set[str]:
    """Return the pseudonyms whose identity data the server may keep for linking now.

    Those with consent for at least one purpose (from any channel), neither restricted nor
    erased.

    Parameters
    ----------
    session : Session
        A session.
    subjects : Sequence[str]
        Pseudonyms of an upload.
    at : datetime
        The moment of evaluation.

    Returns
    -------
    set[str]
        The accepted pseudonyms.
    """
    states = consent_states(session=session, subjects=subjects)
    blocked = restricted_among(session=session, subjects=subjects) | set(
        tombstones_of(session=session, subjects=subjects)
    )
    return {
        s for s in subjects if s not in blocked and s in states and states[s].granted_purposes(at)
    }


def link_records(
    change: Relink, *, actor: str, role: str, at: datetime, reason: str
) -> list[AuditRecord]:
    """Return one audit record per pseudonym that joined, moved or left a person.

    Parameters
    ----------
    change : Relink
        What a recomputation changed.
    actor, role : str
        Who caused it (an edge's upload, an officer's decision).
    at : datetime
        When.
    reason : str
        Why the graph was recomputed (``tokens``, ``merge``, ``detach``, ``undo`` ...).

    Returns
    -------
    list[AuditRecord]
        ``identity.link`` and ``identity.unlink`` entries, by pseudonym.
    """
    records = [
        AuditRecord(
            actor=actor, role=role, action=AuditAction.IDENTITY_LINK, purpose=None,
            subject=subject, outcome=AuditOutcome.ACCEPTED,
            detail={"person": person, "evidence": change.evidence.get(subject, []),
                    "reason": reason},
            at=at,
        )
        for subject, person in sorted(change.linked.items())
    ]  # fmt: skip
    records += [
        AuditRecord(
            actor=actor, role=role, action=AuditAction.IDENTITY_UNLINK, purpose=None,
            subject=subject, outcome=AuditOutcome.ACCEPTED,
            detail={"person": person, "reason": reason}, at=at,
        )
        for subject, person in sorted(change.unlinked.items())
    ]  # fmt: skip
    return records


def record_tokens(
    *,
    session: Session,
    batch: IdentityTokenBatch,
    principal: Principal,
    audit: AuditSink,
    hub_limit: int,
    at: datetime,
) -> IdentityTokenResult:
    """Store an edge's identity tokens, relink the persons they touch, audit; commit.

    Parameters
    ----------
    session : Session
        A session.
    batch : IdentityTokenBatch
        Pseudonyms and their tokens.
    principal : Principal
        The uploading edge.
    audit : AuditSink
        Receives one ``identity.tokens`` entry for the batch and one ``identity.link`` /
        ``identity.unlink`` entry per pseudonym whose person changed.
    hub_limit : int
        Tokens shared by more pseudonyms than this link nobody.
    at : datetime
        When.

    Returns
    -------
    IdentityTokenResult
        Counts of new and known pairs, refused pseudonyms, links and hubs.
    """
    lock_chain(session=session)
    subjects = sorted({item.subject for item in batch.items})
    accepted = linkable_subjects(session, subjects, at=at)
    wanted = {(i.subject, t.token): t.kind for i in batch.items if i.subject in accepted
              for t in i.tokens}  # fmt: skip
    held = _held(session, accepted)
    new = {pair: kind for pair, kind in wanted.items() if pair not in held}
    if new:
        touch_subjects(session=session, subjects={s for s, _ in new}, at=at)
        session.flush()
        session.connection().execute(
            insert(_TOKEN),
            [
                {"subject": s, "token": t, "kind": k, "edge_id": principal.edge_id,
                 "first_seen_at": at}
                for (s, t), k in sorted(new.items())
            ],
        )  # fmt: skip
    change = relink(session, {s for s, _ in new}, hub_limit=hub_limit, at=at) if new else Relink()
    result = IdentityTokenResult(
        recorded=len(new),
        duplicates=len(wanted) - len(new),
        refused=len(subjects) - len(accepted),
        linked=len(change.linked),
        hubs=len(change.hubs),
        refused_subjects=[s for s in subjects if s not in accepted],
    )
    summary = AuditRecord(
        actor=principal.actor, role=principal.role.value, action=AuditAction.IDENTITY_TOKENS,
        purpose=None, subject=None, outcome=AuditOutcome.ACCEPTED,
        detail=result.model_dump(exclude={"refused_subjects"}), at=at,
    )  # fmt: skip
    link_audit = link_records(
        change, actor=principal.actor, role=principal.role.value, at=at, reason="tokens"
    )
    audit.record_many([summary, *link_audit])
    session.commit()
    logger.info(
        "identity tokens: %d new, %d refused subject(s), %d linked, %d hub(s)",
        result.recorded, result.refused, result.linked, result.hubs,
    )  # fmt: skip
    return result


def _held(session: Session, subjects: set[str]) -> set[tuple[str, str]]:
    """Return the (subject, token) pairs already stored for ``subjects``."""
    held: set[tuple[str, str]] = set()
    ordered = sorted(subjects)
    connection = session.connection()
    for start in range(0, len(ordered), 500):
        rows = connection.execute(
            sa_select(_TOKEN.c.subject, _TOKEN.c.token).where(
                _TOKEN.c.subject.in_(ordered[start : start + 500])
            )
        )
        held.update((str(s), str(t)) for s, t in rows)
    return held
