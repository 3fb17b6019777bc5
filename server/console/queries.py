"""Read models of the console pages: aggregates and keyset pages, never full-table loads.

Every function here runs a bounded number of statements whose cost does not grow with what is
shown: counts and group-bys run in the database, lists are pages of at most ``limit`` rows
ordered along an index (``seq`` for the audit log, ``(due_at, id)`` for requests) and continued
from the last row seen (keyset pagination), so the 1,000th page costs what the first does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, tuple_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from consent import ConsentStatus, Notice, NoticeRegistry, Purpose, RequestState

from ..tables.audit_entry import AuditEntry
from ..tables.consent_record import ConsentRecord
from ..tables.dsr import DataSubjectRequest
from ..tables.edge import Edge
from ..tables.notice import PrivacyNotice
from ..tables.subject import Subject
from ..tables.training import EdgeLedger, TrainingRound

#: An edge not seen for this long is shown as stale.
STALE_AFTER = timedelta(hours=24)
#: States of a request that still needs work.
OPEN_STATES = (
    RequestState.RECEIVED,
    RequestState.VERIFYING,
    RequestState.APPROVED,
    RequestState.IN_PROGRESS,
)


@dataclass(frozen=True)
class EdgeRow:
    """One edge on the overview.

    ``quality`` is ``excluded`` or ``flagged`` when the newest training round it took part
    in judged its data (``server.fl.robust``), else ``ok``, ``stale`` or ``never``;
    ``quality_notes`` are that round's reasons.
    """

    id: str
    name: str
    channel: str
    last_seen_at: datetime | None
    quality: str
    quality_notes: list[str] = field(default_factory=list)


#: Newest training rounds read for the edges' data-quality flags.
QUALITY_ROUNDS = 50
_QUALITY_ACTIONS = frozenset({"flagged", "excluded", "zeroed", "down-weighted"})


def latest_quality_notes(*, session: Session) -> dict[str, list[dict[str, str]]]:
    """Return, per edge name, the data-quality actions of the newest round it trained in."""
    rounds = session.execute(
        select(col(TrainingRound.edges_json))
        .where(col(TrainingRound.phase) == "train")
        .order_by(col(TrainingRound.id).desc())
        .limit(QUALITY_ROUNDS)
    ).all()
    newest: dict[str, list[dict[str, str]]] = {}
    for (edges_json,) in rounds:
        for row in json.loads(edges_json or "[]"):
            name = row.get("edge")
            if not name or name in newest:
                continue
            newest[str(name)] = [
                {"action": str(n.get("action")), "reason": str(n.get("reason"))}
                for n in row.get("robust", [])
                if n.get("action") in _QUALITY_ACTIONS
            ]
    return newest


@dataclass
class Coverage:
    """Latest consent status counts for one purpose."""

    purpose: Purpose
    granted: int = 0
    withdrawn: int = 0
    renewal: int = 0


def edge_rows(*, session: Session, at: datetime) -> list[EdgeRow]:
    """Return every registered edge with its data-quality status at ``at``.

    Parameters
    ----------
    session : Session
        A database session.
    at : datetime
        Now (timezone-aware).

    Returns
    -------
    list[EdgeRow]
        Ordered by name; ``quality`` is ``never`` (no upload yet), ``stale`` (silent for more
        than :data:`STALE_AFTER`) or ``ok``.
    """
    rows = session.execute(select(Edge).order_by(col(Edge.name)).limit(500)).all()
    judged = latest_quality_notes(session=session)
    result = []
    for (edge,) in rows:
        seen = edge.last_seen_at
        quality = "never" if seen is None else ("stale" if at - seen > STALE_AFTER else "ok")
        notes = judged.get(edge.name, [])
        actions = {n["action"] for n in notes}
        if actions & {"excluded", "zeroed"}:
            quality = "excluded"
        elif notes:
            quality = "flagged"
        reasons = [n["reason"] for n in notes if n["action"] == "flagged"]
        result.append(EdgeRow(edge.id, edge.name, str(edge.channel), seen, quality, reasons))
    return result


def count_subjects(*, session: Session) -> int:
    """Return the number of subjects the server holds (one ``COUNT``)."""
    return int(session.scalar(select(func.count()).select_from(Subject)) or 0)


def _renewal_case(notices: NoticeRegistry, at: datetime) -> ColumnElement[Any]:
    """Return SQL true for a grant whose notice version a material notice has paused."""
    branches = []
    for purpose in Purpose:
        accepted = notices.accepted_versions(purpose, at)
        if accepted is not None:
            paused = col(ConsentRecord.notice_version).not_in(sorted(accepted))
            branches.append(and_(col(ConsentRecord.purpose) == purpose.value, paused))
    if not branches:
        return literal(False)
    return or_(*branches)


def consent_coverage(*, session: Session, notices: NoticeRegistry, at: datetime) -> list[Coverage]:
    """Count, per purpose, subjects whose latest consent event is a grant or a withdrawal.

    A grant whose notice version a later material notice no longer accepts counts as
    *pending renewal* instead of granted (see :meth:`consent.NoticeRegistry.needs_renewal`).
    Runs one grouped query over the latest event of each (subject, purpose).

    Parameters
    ----------
    session : Session
        A database session.
    notices : NoticeRegistry
        The published notices.
    at : datetime
        Now (timezone-aware).

    Returns
    -------
    list[Coverage]
        One entry per purpose, in catalogue order.
    """
    latest = (
        select(func.max(col(ConsentRecord.id)).label("id"))
        .group_by(col(ConsentRecord.subject), col(ConsentRecord.purpose))
        .subquery()
    )
    renewal = _renewal_case(notices, at)
    bucket = case(
        (
            and_(col(ConsentRecord.status) == ConsentStatus.GRANTED.value, renewal),
            literal("renewal"),
        ),
        else_=col(ConsentRecord.status),
    )
    statement = (
        select(col(ConsentRecord.purpose), bucket.label("bucket"), func.count())
        .join(latest, latest.c.id == col(ConsentRecord.id))
        .group_by(col(ConsentRecord.purpose), bucket)
    )
    found = {p: Coverage(purpose=p) for p in Purpose}
    for purpose, kind, count in session.execute(statement):
        entry = found.get(Purpose(purpose))
        if entry is None:
            continue
        if kind == "renewal":
            entry.renewal += int(count)
        elif kind == ConsentStatus.GRANTED.value:
            entry.granted += int(count)
        else:  # withdrawn, revoked and expired all end the purpose
            entry.withdrawn += int(count)
    return list(found.values())


def subject_history(*, session: Session, subject: str, limit: int = 200) -> list[ConsentRecord]:
    """Return a subject's consent events, oldest first (at most ``limit``).

    Parameters
    ----------
    session : Session
        A database session.
    subject : str
        The pseudonym.
    limit : int
        Most events returned.

    Returns
    -------
    list[ConsentRecord]
        The events (indexed lookup on ``subject``).
    """
    statement = (
        select(ConsentRecord)
        .where(col(ConsentRecord.subject) == subject)
        .order_by(col(ConsentRecord.id))
        .limit(limit)
    )
    return [row for (row,) in session.execute(statement)]


@dataclass(frozen=True)
class RequestPage:
    """One page of the requests queue and the cursor of the next one."""

    rows: list[DataSubjectRequest]
    next_cursor: str | None
    open_count: int


def _request_filters(
    state: RequestState | None, due_before: datetime | None
) -> list[ColumnElement[bool]]:
    """WHERE clauses of the queue's filters."""
    clauses: list[ColumnElement[bool]] = []
    if state is not None:
        clauses.append(col(DataSubjectRequest.state) == state.value)
    if due_before is not None:
        clauses.append(col(DataSubjectRequest.due_at) < due_before)
    return clauses


def request_page(
    *,
    session: Session,
    state: RequestState | None = None,
    open_only: bool = False,
    due_before: datetime | None = None,
    after: str | None = None,
    limit: int = 50,
) -> RequestPage:
    """Return requests ordered by due date (soonest first), one keyset page.

    Parameters
    ----------
    session : Session
        A database session.
    state : RequestState or None
        Only requests in this state.
    open_only : bool
        Only requests still needing work (ignored when ``state`` is given).
    due_before : datetime or None
        Only requests due before this moment.
    after : str or None
        Cursor from the previous page (``<due_at ISO>|<id>``).
    limit : int
        Page size.

    Returns
    -------
    RequestPage
        The rows, the next cursor (``None`` on the last page) and the number of open requests.

    Raises
    ------
    ValueError
        If ``after`` is not a cursor this function produced.
    """
    clauses = _request_filters(state, due_before)
    if state is None and open_only:
        clauses.append(col(DataSubjectRequest.state).in_([s.value for s in OPEN_STATES]))
    statement = select(DataSubjectRequest).where(*clauses)
    if after is not None:
        due_text, _, last_id = after.partition("|")
        due = datetime.fromisoformat(due_text)
        key = tuple_(col(DataSubjectRequest.due_at), col(DataSubjectRequest.id))
        statement = statement.where(key > tuple_(literal(due), literal(last_id)))
    statement = statement.order_by(
        col(DataSubjectRequest.due_at), col(DataSubjectRequest.id)
    ).limit(limit + 1)
    rows = [row for (row,) in session.execute(statement)]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = f"{rows[-1].due_at.isoformat()}|{rows[-1].id}"
    open_count = session.scalar(
        select(func.count())
        .select_from(DataSubjectRequest)
        .where(col(DataSubjectRequest.state).in_([s.value for s in OPEN_STATES]))
    )
    return RequestPage(rows=rows, next_cursor=next_cursor, open_count=int(open_count or 0))


@dataclass(frozen=True)
class AuditFilter:
    """Equality filters of the audit browser (``None`` = any)."""

    action: str | None = None
    actor: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class AuditPage:
    """Newest-first audit entries and the ``before`` cursor of the next (older) page."""

    rows: list[AuditEntry]
    before: int | None


def audit_page(
    *, session: Session, filters: AuditFilter, before: int | None = None, limit: int = 50
) -> AuditPage:
    """Return one page of audit entries, newest first, continuing below ``before``.

    Walks the primary key ``seq`` backwards, so a page costs ``limit`` rows however long the
    log is (filters on rare values scan further back until the page is full).

    Parameters
    ----------
    session : Session
        A database session.
    filters : AuditFilter
        Equality filters.
    before : int or None
        Only entries with ``seq`` below this (the previous page's cursor).
    limit : int
        Page size.

    Returns
    -------
    AuditPage
        The entries and the next cursor (``None`` on the last page).
    """
    statement = select(AuditEntry)
    if filters.action:
        statement = statement.where(col(AuditEntry.action) == filters.action)
    if filters.actor:
        statement = statement.where(col(AuditEntry.actor) == filters.actor)
    if filters.outcome:
        statement = statement.where(col(AuditEntry.outcome) == filters.outcome)
    if before is not None:
        statement = statement.where(col(AuditEntry.seq) < before)
    statement = statement.order_by(col(AuditEntry.seq).desc()).limit(limit + 1)
    rows = [row for (row,) in session.execute(statement)]
    cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        cursor = rows[-1].seq
    return AuditPage(rows=rows, before=cursor)


@dataclass
class BudgetSeries:
    """One edge's ε over its accounted releases for one model (``runs``: training runs)."""

    edge_id: str
    edge_name: str
    channel: str
    model: str
    epsilon: float
    delta: float
    budget: float | None
    exhausted: bool
    points: list[tuple[int, float]] = field(default_factory=list)
    runs: int = 0


def budget_series(*, session: Session, model: str | None = None) -> list[BudgetSeries]:
    """Return each edge's cumulative ε after every accounted release, per model.

    Parameters
    ----------
    session : Session
        A database session.
    model : str or None
        Only this model.

    Returns
    -------
    list[BudgetSeries]
        One series per (edge, model), points ``(release number, ε after it)``.
    """
    statement = select(EdgeLedger, col(Edge.name)).join(
        Edge, col(Edge.id) == col(EdgeLedger.edge_id)
    )
    if model is not None:
        statement = statement.where(col(EdgeLedger.model) == model)
    statement = statement.order_by(col(Edge.name), col(EdgeLedger.model)).limit(500)
    series = []
    for ledger, name in session.execute(statement):
        entries: Sequence[dict[str, Any]] = json.loads(ledger.entries_json)
        points = [(i + 1, float(e["epsilon_after"])) for i, e in enumerate(entries)]
        runs = len({str(e.get("run_id")) for e in entries})  # scheduled runs compose here
        series.append(
            BudgetSeries(
                edge_id=ledger.edge_id,
                edge_name=name,
                channel=ledger.channel,
                model=ledger.model,
                epsilon=ledger.epsilon,
                delta=ledger.delta,
                budget=ledger.budget,
                exhausted=ledger.exhausted,
                points=points,
                runs=runs,
            )
        )
    return series


def notice_rows(*, session: Session, limit: int = 200) -> list[PrivacyNotice]:
    """Return published notice versions, newest first (the table is small and append-only).

    Parameters
    ----------
    session : Session
        A database session.
    limit : int
        Most rows returned.

    Returns
    -------
    list[PrivacyNotice]
        The notices.
    """
    statement = (
        select(PrivacyNotice)
        .order_by(col(PrivacyNotice.published_at).desc(), col(PrivacyNotice.version).desc())
        .limit(limit)
    )
    return [row for (row,) in session.execute(statement)]


def notice_registry(rows: Sequence[PrivacyNotice]) -> NoticeRegistry:
    """Build the registry that answers "which grants need renewal" from notice rows.

    Parameters
    ----------
    rows : Sequence[PrivacyNotice]
        Published notices.

    Returns
    -------
    NoticeRegistry
        The registry.
    """
    return NoticeRegistry(
        Notice(
            version=row.version,
            purposes=tuple(Purpose(p) for p in row.purposes.split(",") if p),
            material=row.material,
            content_hash=row.content_hash,
            url=row.url,
            language=row.language,
            published_at=row.published_at,
        )
        for row in rows
    )
