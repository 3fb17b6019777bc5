"""Edges' keyed encodings in, probabilistic pairs out: store, link, relink, audit, commit.

For customers who share no identifier (an app account and a desk phone, nothing in common),
edges send keyed Bloom-filter encodings of name, birth date, address and postcode
(``privacy.LinkageEncoder``). The server stores the latest per pseudonym and runs the same
linkage as ``fedprofile identity link`` (``server.identity.linkage``) in deduplication mode:
the batch's encodings against every stored one, never a record against itself, decisions
not one-to-one (a person may hold several pseudonyms). A ``match`` (P(match) at or above the
server's threshold, 0.99 by default: a false merge costs far more than a missed link) joins
the pair automatically (status ``linked``); the review band (from 0.5) goes to officers
(``pending``), whose ``accepted`` / ``rejected`` is never overturned by a later
score. The server never decodes an encoding: it compares filters.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models import IdentityEncodingBatch, IdentityEncodingResult
from privacy import EncodedRecord, EncodingFormatError, EncodingMismatchError, parse_encoded_lines

from ..audit.append import lock_chain
from ..audit.events import AuditAction, AuditOutcome
from ..audit.record import AuditRecord
from ..audit.sink import AuditSink
from ..crud.subject import touch_subjects
from ..errors import IdentityDecisionError, NotFoundError
from ..principal import Principal
from ..tables.identity import IdentityCandidate, IdentityEncoding
from .graph import ACCEPTED, LINKED, PENDING, REJECTED, Relink, relink
from .linkage import LinkDecision, run_linkage
from .tokens import link_records, linkable_subjects

logger = logging.getLogger(__name__)

_ENCODING = IdentityEncoding.metadata.tables[IdentityEncoding.__tablename__]
_CANDIDATE = IdentityCandidate.metadata.tables[IdentityCandidate.__tablename__]
#: Fewest stored encodings before the server fits a linkage model (EM needs a population).
MIN_POPULATION = 50


def _stored(session: Session) -> dict[str, str]:
    rows = session.connection().execute(sa_select(_ENCODING.c.subject, _ENCODING.c.record_json))
    return {str(s): str(r) for s, r in rows}


def _parse(subject: str, record: dict[str, object]) -> EncodedRecord | None:
    """Return the record if it is a well-formed encoding of ``subject`` (else None: refused)."""
    try:
        parsed = list(parse_encoded_lines([json.dumps(record)], source="upload"))
    except EncodingFormatError:
        return None
    return parsed[0] if parsed and parsed[0].id == subject else None


def record_encodings(
    *,
    session: Session,
    batch: IdentityEncodingBatch,
    principal: Principal,
    audit: AuditSink,
    hub_limit: int,
    at: datetime,
    threshold: float = 0.99,
    review_floor: float = 0.5,
) -> IdentityEncodingResult:
    """Store encodings, link them against the stored population, relink persons; commit.

    Parameters
    ----------
    session : Session
        A session.
    batch : IdentityEncodingBatch
        Pseudonyms and their encodings.
    principal : Principal
        The uploading edge.
    audit : AuditSink
        Receives ``identity.encodings`` for the batch and link / unlink entries.
    hub_limit : int
        The server's hub limit (for the relink).
    at : datetime
        When.
    threshold, review_floor : float
        P(match) from which a pair is joined automatically, and from which it is reviewed
        (``ServerSettings.identity_match_threshold`` / ``identity_review_floor``).

    Returns
    -------
    IdentityEncodingResult
        Stored, unchanged and refused counts, new matches and reviews, and links.
    """
    lock_chain(session=session)
    allowed = linkable_subjects(session, sorted({i.subject for i in batch.items}), at=at)
    stored = _stored(session)
    fresh: dict[str, str] = {}
    refused: list[str] = []
    for item in batch.items:
        if item.subject not in allowed or _parse(item.subject, item.record) is None:
            refused.append(item.subject)
            continue
        fresh[item.subject] = json.dumps(item.record, ensure_ascii=False, sort_keys=True)
    changed = {s: r for s, r in fresh.items() if stored.get(s) != r}
    _write(session, changed, known=set(stored), at=at)
    stored.update(changed)
    matches, reviews, change = 0, 0, Relink()
    if changed and len(stored) >= MIN_POPULATION:
        matches, reviews, seeds = _link(
            session, changed, stored, at=at, threshold=threshold, review_floor=review_floor
        )
        if seeds:
            change = relink(session, seeds, hub_limit=hub_limit, at=at)
    result = IdentityEncodingResult(
        recorded=len(changed), unchanged=len(fresh) - len(changed), refused=len(refused),
        refused_subjects=sorted(refused), matches=matches, reviews=reviews,
        linked=len(change.linked),
    )  # fmt: skip
    summary = AuditRecord(
        actor=principal.actor, role=principal.role.value, action=AuditAction.IDENTITY_ENCODINGS,
        purpose=None, subject=None, outcome=AuditOutcome.ACCEPTED,
        detail=result.model_dump(exclude={"refused_subjects"}), at=at,
    )  # fmt: skip
    links = link_records(
        change, actor=principal.actor, role=principal.role.value, at=at, reason="probabilistic"
    )
    audit.record_many([summary, *links])
    session.commit()
    return result


def _write(session: Session, changed: dict[str, str], *, known: set[str], at: datetime) -> None:
    if not changed:
        return
    touch_subjects(session=session, subjects=set(changed), at=at)
    session.flush()
    connection = session.connection()
    new = [{"subject": s, "record_json": r, "updated_at": at}
           for s, r in sorted(changed.items()) if s not in known]  # fmt: skip
    if new:
        connection.execute(insert(_ENCODING), new)
    for subject, record in sorted(changed.items()):
        if subject in known:
            connection.execute(
                update(_ENCODING)
                .where(_ENCODING.c.subject == subject)
                .values(record_json=record, updated_at=at)
            )


def _records(lines: dict[str, str]) -> list[EncodedRecord]:
    return list(parse_encoded_lines(lines.values(), source="stored"))


def _link(
    session: Session,
    changed: dict[str, str],
    stored: dict[str, str],
    *,
    at: datetime,
    threshold: float,
    review_floor: float,
) -> tuple[int, int, set[str]]:
    """Score the changed encodings against all; store new pairs; return counts and seeds."""
    try:
        result = run_linkage(
            _records(changed), _records(stored), dedupe=True, threshold=threshold,
            review_floor=min(review_floor, threshold),
        )  # fmt: skip
    except EncodingMismatchError as exc:
        # Encodings of another key or scheme (an edge on an old key): nothing to compare.
        logger.warning("probabilistic linkage skipped: %s", exc)
        return 0, 0, set()
    touched = sorted(changed)
    query = sa_select(
        _CANDIDATE.c.id, _CANDIDATE.c.subject, _CANDIDATE.c.other, _CANDIDATE.c.status
    ).where(_CANDIDATE.c.subject.in_(touched) | _CANDIDATE.c.other.in_(touched))
    existing = {
        (str(a), str(b)): (int(i), str(status))
        for i, a, b, status in session.connection().execute(query)
    }
    matches = reviews = 0
    seeds: set[str] = set()
    for link in result.links:
        pair = (min(link.a_id, link.b_id), max(link.a_id, link.b_id))
        status = LINKED if link.decision is LinkDecision.MATCH else PENDING
        known = existing.get(pair)
        if known is not None and known[1] in (ACCEPTED, REJECTED):
            continue  # an officer decided; a later score does not overturn it
        values = {"score": link.score, "decision": link.decision.value, "status": status}
        if known is None:
            session.connection().execute(
                insert(_CANDIDATE).values(subject=pair[0], other=pair[1], created_at=at, **values)
            )
        else:
            session.connection().execute(
                update(_CANDIDATE).where(_CANDIDATE.c.id == known[0]).values(**values)
            )
        if status == LINKED:
            matches += 1
            seeds.update(pair)
        else:
            reviews += 1
    return matches, reviews, seeds


def pending_reviews(session: Session, *, limit: int = 100) -> Sequence[IdentityCandidate]:
    """Return pairs waiting for an officer, most probable first.

    Parameters
    ----------
    session : Session
        A session.
    limit : int
        Most pairs returned.

    Returns
    -------
    Sequence[IdentityCandidate]
        The pending pairs.
    """
    stmt = (
        select(IdentityCandidate)
        .where(col(IdentityCandidate.status) == PENDING)
        .order_by(col(IdentityCandidate.score).desc(), col(IdentityCandidate.id))
        .limit(limit)
    )
    return session.exec(stmt).all()


def review_pair(
    *,
    session: Session,
    candidate_id: int,
    accept: bool,
    principal: Principal,
    audit: AuditSink,
    hub_limit: int,
    at: datetime,
) -> Relink:
    """Accept or reject a scored pair (pending, or an automatic match); audit; commit.

    Parameters
    ----------
    session : Session
        A session.
    candidate_id : int
        The pair.
    accept : bool
        Accept (the two are one person) or reject (they are not; an automatic link is undone).
    principal : Principal
        The officer.
    audit : AuditSink
        Receives ``identity.review`` for both pseudonyms and the link / unlink entries.
    hub_limit : int
        The server's hub limit.
    at : datetime
        When.

    Returns
    -------
    Relink
        What changed.

    Raises
    ------
    NotFoundError
        If there is no such pair.
    IdentityDecisionError
        If an officer already decided it.
    """
    lock_chain(session=session)
    row = session.get(IdentityCandidate, candidate_id)
    if row is None:
        raise NotFoundError(kind="identity candidate", ref=str(candidate_id))
    if row.status in (ACCEPTED, REJECTED):
        raise IdentityDecisionError("an officer already reviewed this pair")
    row.status = ACCEPTED if accept else REJECTED
    row.reviewed_by = principal.actor
    row.reviewed_at = at
    session.add(row)
    session.flush()
    change = relink(session, {row.subject, row.other}, hub_limit=hub_limit, at=at)
    records = [
        AuditRecord(
            actor=principal.actor, role=principal.role.value, action=AuditAction.IDENTITY_REVIEW,
            purpose=None, subject=subject, outcome=AuditOutcome.ACCEPTED,
            detail={"candidate": candidate_id, "status": row.status, "score": round(row.score, 4)},
            at=at,
        )
        for subject in (row.subject, row.other)
    ]  # fmt: skip
    records += link_records(
        change, actor=principal.actor, role=principal.role.value, at=at, reason="review"
    )
    audit.record_many(records)
    session.commit()
    return change
