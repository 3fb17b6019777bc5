"""The deterministic identity graph: pseudonyms that share a keyed token are one person.

Nodes are pseudonyms; an edge joins two pseudonyms that reported the same identity token
(``server.tables.identity.IdentityToken``), or that an officer merged. Connected components
of two or more pseudonyms are *persons* (``PersonMember``). Guards:

* a token shared by more than ``hub_limit`` pseudonyms is a **hub** (a shared family tablet,
  a shop's phone, a dummy value that slipped past the edge): it links nobody and is
  reported (:func:`hub_tokens`);
* a pseudonym an officer *detached* takes part in no automatic link (only officer merges);
* officers' merges are must-links; undoing a decision recomputes the component.

:func:`relink` recomputes the components touching some pseudonyms (their old persons
included, so a token that just became a hub splits what it had joined) and keeps person ids
stable: a component keeps the id most of its members had. Union-find is a few lines
(``_DisjointSet``), so no graph library is needed.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from ..tables.identity import IdentityCandidate, IdentityOverride, IdentityToken, PersonMember

_TOKEN = IdentityToken.metadata.tables[IdentityToken.__tablename__]
_CANDIDATE = IdentityCandidate.metadata.tables[IdentityCandidate.__tablename__]
_MEMBER = PersonMember.metadata.tables[PersonMember.__tablename__]
_OVERRIDE = IdentityOverride.metadata.tables[IdentityOverride.__tablename__]
#: Values per ``IN (...)`` clause.
CHUNK = 500
#: Characters of a token kept as evidence in audit entries (``it_`` + 12 hex digits).
TOKEN_EVIDENCE_CHARS = 15
MERGE = "merge"
DETACH = "detach"
#: Statuses of a probabilistic pair that join its pseudonyms: a model match (automatic) and
#: an officer's acceptance of a reviewed pair.
LINKED = "linked"
ACCEPTED = "accepted"
PENDING = "pending"
REJECTED = "rejected"


@dataclass
class Relink:
    """What a recomputation changed.

    Parameters
    ----------
    linked : dict[str, str]
        Pseudonyms that joined (or moved to) a person, with the person id.
    unlinked : dict[str, str]
        Pseudonyms that left a person (they are on their own now), with the old person id.
    evidence : dict[str, list[str]]
        Per linked pseudonym: the shared token kinds and token prefixes, and ``officer``
        for an officer's merge.
    hubs : set[str]
        Hub tokens met on the way (never linked).
    """

    linked: dict[str, str] = field(default_factory=dict)
    unlinked: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, list[str]] = field(default_factory=dict)
    hubs: set[str] = field(default_factory=set)


class _DisjointSet:
    """Union-find with path halving over string keys."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._parent = {k: k for k in keys}

    def find(self, key: str) -> str:
        parent = self._parent
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[str]]:
        out: dict[str, list[str]] = {}
        for key in self._parent:
            out.setdefault(self.find(key), []).append(key)
        return [sorted(g) for g in out.values()]


def _chunks(values: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _active_overrides(session: Session) -> tuple[set[str], list[tuple[str, str]]]:
    """Detached pseudonyms and merged pairs still in force."""
    rows = session.connection().execute(
        sa_select(_OVERRIDE.c.action, _OVERRIDE.c.subject, _OVERRIDE.c.other).where(
            _OVERRIDE.c.undone_at.is_(None)
        )
    )
    detached: set[str] = set()
    merges: list[tuple[str, str]] = []
    for action, subject, other in rows:
        if action == DETACH:
            detached.add(str(subject))
        elif action == MERGE and other is not None:
            merges.append((str(subject), str(other)))
    return detached, merges


def token_counts(session: Session, tokens: Collection[str]) -> dict[str, int]:
    """Return how many pseudonyms reported each token.

    Parameters
    ----------
    session : Session
        A session.
    tokens : Collection[str]
        ``it_`` tokens.

    Returns
    -------
    dict[str, int]
        Distinct pseudonyms per token (tokens nobody reported are absent).
    """
    counts: dict[str, int] = {}
    connection = session.connection()
    for chunk in _chunks(tokens):
        rows = connection.execute(
            sa_select(_TOKEN.c.token, func.count(func.distinct(_TOKEN.c.subject)))
            .where(_TOKEN.c.token.in_(chunk))
            .group_by(_TOKEN.c.token)
        )
        counts.update({str(t): int(n) for t, n in rows})
    return counts


def _tokens_of(session: Session, subjects: Collection[str]) -> list[tuple[str, str, str]]:
    """``(subject, token, kind)`` rows of ``subjects``."""
    out: list[tuple[str, str, str]] = []
    connection = session.connection()
    for chunk in _chunks(subjects):
        rows = connection.execute(
            sa_select(_TOKEN.c.subject, _TOKEN.c.token, _TOKEN.c.kind).where(
                _TOKEN.c.subject.in_(chunk)
            )
        )
        out.extend((str(s), str(t), str(k)) for s, t, k in rows)
    return out


def _holders(session: Session, tokens: Collection[str]) -> list[tuple[str, str]]:
    """``(token, subject)`` rows of ``tokens``."""
    out: list[tuple[str, str]] = []
    connection = session.connection()
    for chunk in _chunks(tokens):
        rows = connection.execute(
            sa_select(_TOKEN.c.token, _TOKEN.c.subject).where(_TOKEN.c.token.in_(chunk))
        )
        out.extend((str(t), str(s)) for t, s in rows)
    return out


def _scored_pairs(
    session: Session, subjects: Collection[str], detached: set[str]
) -> list[tuple[str, str, str, float]]:
    """Probabilistic pairs touching ``subjects`` that join: ``(a, b, status, score)``.

    Automatic (``linked``) pairs do not apply to detached pseudonyms; officers' acceptances do.
    """
    out: list[tuple[str, str, str, float]] = []
    connection = session.connection()
    joining = (LINKED, ACCEPTED)
    for chunk in _chunks(subjects):
        rows = connection.execute(
            sa_select(_CANDIDATE.c.subject, _CANDIDATE.c.other, _CANDIDATE.c.status,
                      _CANDIDATE.c.score)
            .where(_CANDIDATE.c.status.in_(joining))
            .where(_CANDIDATE.c.subject.in_(chunk) | _CANDIDATE.c.other.in_(chunk))
        )  # fmt: skip
        for a, b, status, score in rows:
            if status == LINKED and (a in detached or b in detached):
                continue
            out.append((str(a), str(b), str(status), float(score)))
    return out


def _persons_of(session: Session, subjects: Collection[str]) -> dict[str, str]:
    """Return the current person id of each of ``subjects`` that has one."""
    out: dict[str, str] = {}
    connection = session.connection()
    for chunk in _chunks(subjects):
        rows = connection.execute(
            sa_select(_MEMBER.c.subject, _MEMBER.c.person_id).where(_MEMBER.c.subject.in_(chunk))
        )
        out.update({str(s): str(p) for s, p in rows})
    return out


def _members_of_persons(session: Session, persons: Collection[str]) -> set[str]:
    out: set[str] = set()
    connection = session.connection()
    for chunk in _chunks(persons):
        rows = connection.execute(
            sa_select(_MEMBER.c.subject).where(_MEMBER.c.person_id.in_(chunk))
        )
        out.update(str(r[0]) for r in rows)
    return out


def members_of(session: Session, subject: str) -> list[str]:
    """Return every pseudonym of ``subject``'s person, itself included, sorted.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        A pseudonym.

    Returns
    -------
    list[str]
        ``[subject]`` when it belongs to no person of two or more.
    """
    person = _persons_of(session, [subject]).get(subject)
    if person is None:
        return [subject]
    return sorted(_members_of_persons(session, [person]))


def person_of(session: Session, subject: str) -> str | None:
    """Return the id of ``subject``'s person, or None when it stands alone."""
    return _persons_of(session, [subject]).get(subject)


def _component(
    session: Session, seeds: Collection[str], *, hub_limit: int, detached: set[str],
    merges: Sequence[tuple[str, str]],
    scored: list[tuple[str, str, str, float]],
) -> tuple[set[str], dict[str, list[str]], set[str], list[tuple[str, str, str]]]:  # fmt: skip
    """Collect every pseudonym reachable from ``seeds`` (old persons included).

    Probabilistic pairs met on the way are appended to ``scored``.
    """
    visited, frontier = set(seeds), set(seeds)
    holders: dict[str, list[str]] = {}
    hubs: set[str] = set()
    seen_tokens: set[str] = set()
    token_rows: list[tuple[str, str, str]] = []
    while frontier:
        reached = _members_of_persons(session, set(_persons_of(session, frontier).values()))
        rows = _tokens_of(session, frontier - detached)
        token_rows.extend(rows)
        fresh = {t for _, t, _ in rows} - seen_tokens
        seen_tokens |= fresh
        counts = token_counts(session, fresh)
        hubs |= {t for t in fresh if counts.get(t, 0) > hub_limit}
        for token, holder in _holders(session, fresh - hubs):
            if holder not in detached:
                holders.setdefault(token, []).append(holder)
                reached.add(holder)
        for a, b in merges:
            if a in frontier or b in frontier:
                reached.update((a, b))
        for pair in _scored_pairs(session, frontier, detached):
            if pair not in scored:
                scored.append(pair)
            reached.update(pair[:2])
        frontier = reached - visited
        visited |= frontier
    return visited, holders, hubs, token_rows


def relink(session: Session, seeds: Collection[str], *, hub_limit: int, at: datetime) -> Relink:
    """Recompute the persons of ``seeds`` and everything linked to them (no commit).

    Parameters
    ----------
    session : Session
        Session of the enclosing write (hold the audit chain's lock).
    seeds : Collection[str]
        Pseudonyms whose tokens or overrides changed.
    hub_limit : int
        Most pseudonyms a token may be shared by and still link them.
    at : datetime
        Time stamped on new memberships.

    Returns
    -------
    Relink
        Who joined, moved or left a person, with evidence, and the hubs met.
    """
    detached, merges = _active_overrides(session)
    scored: list[tuple[str, str, str, float]] = []
    visited, holders, hubs, token_rows = _component(
        session, seeds, hub_limit=hub_limit, detached=detached, merges=merges, scored=scored
    )
    sets = _DisjointSet(visited)
    for members in holders.values():
        for other in members[1:]:
            sets.union(members[0], other)
    for a, b in merges:
        if a in visited and b in visited:
            sets.union(a, b)
    for a, b, _, _ in scored:
        sets.union(a, b)
    old = _persons_of(session, visited)
    result = Relink(hubs=hubs)
    claimed: set[str] = set()
    for group in sorted(sets.groups(), key=lambda g: (-len(g), g[0])):
        if len(group) < 2:
            if group[0] in old:
                result.unlinked[group[0]] = old[group[0]]
            continue
        votes = Counter(old[s] for s in group if s in old and old[s] not in claimed)
        ranked = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))
        person = ranked[0][0] if ranked else f"pn_{uuid.uuid4().hex[:24]}"
        claimed.add(person)
        for subject in group:
            if old.get(subject) != person:
                result.linked[subject] = person
    _write(session, result, at=at)
    result.evidence = _evidence(result.linked, holders, token_rows, merges, scored)
    return result


def _write(session: Session, result: Relink, *, at: datetime) -> None:
    connection = session.connection()
    for chunk in _chunks(result.unlinked):
        connection.execute(delete(_MEMBER).where(_MEMBER.c.subject.in_(chunk)))
    existing = _persons_of(session, result.linked)
    moved = [s for s in result.linked if s in existing]
    new = [s for s in result.linked if s not in existing]
    for subject in moved:
        connection.execute(
            update(_MEMBER)
            .where(_MEMBER.c.subject == subject)
            .values(person_id=result.linked[subject], linked_at=at)
        )
    if new:
        connection.execute(
            insert(_MEMBER),
            [{"subject": s, "person_id": result.linked[s], "linked_at": at} for s in new],
        )


def _evidence(
    linked: dict[str, str],
    holders: dict[str, list[str]],
    token_rows: Sequence[tuple[str, str, str]],
    merges: Sequence[tuple[str, str]],
    scored: Sequence[tuple[str, str, str, float]],
) -> dict[str, list[str]]:
    """Per linked pseudonym: shared ``kind:it_prefix`` tokens, officer merges, scored pairs."""
    kinds = {token: kind for _, token, kind in token_rows}
    out: dict[str, list[str]] = {}
    for subject in linked:
        items = sorted(
            f"{kinds.get(token, '?')}:{token[:TOKEN_EVIDENCE_CHARS]}"
            for token, members in holders.items()
            if subject in members and len(members) > 1
        )
        if any(subject in pair for pair in merges):
            items.append("officer_merge")
        items.extend(
            f"{'probabilistic' if status == LINKED else 'officer_review'}:{score:.3f}"
            for a, b, status, score in scored
            if subject in (a, b)
        )
        out[subject] = items
    return out


def hub_tokens(session: Session, *, hub_limit: int) -> list[tuple[str, str, int]]:
    """Return every hub: ``(token, kind, pseudonyms sharing it)``, most shared first.

    Parameters
    ----------
    session : Session
        A session.
    hub_limit : int
        Tokens shared by more pseudonyms than this are hubs.

    Returns
    -------
    list[tuple[str, str, int]]
        The hubs (the token is keyed: it tells an officer nothing about the identifier).
    """
    count = func.count(func.distinct(_TOKEN.c.subject))
    rows = session.connection().execute(
        sa_select(_TOKEN.c.token, func.min(_TOKEN.c.kind), count)
        .group_by(_TOKEN.c.token)
        .having(count > hub_limit)
        .order_by(count.desc(), _TOKEN.c.token)
    )
    return [(str(t), str(k), int(n)) for t, k, n in rows]


def persons_page(
    session: Session, *, after: str | None = None, limit: int = 500
) -> list[tuple[str, list[str]]]:
    """Return persons (id, sorted pseudonyms) in id order, ``limit`` at a time.

    Parameters
    ----------
    session : Session
        A session.
    after : str or None
        Continue after this person id (the last one of the previous page).
    limit : int
        Most persons returned.

    Returns
    -------
    list[tuple[str, list[str]]]
        Persons of two or more pseudonyms.
    """
    connection = session.connection()
    ids = sa_select(_MEMBER.c.person_id).distinct().order_by(_MEMBER.c.person_id).limit(limit)
    if after is not None:
        ids = ids.where(_MEMBER.c.person_id > after)
    wanted = [str(r[0]) for r in connection.execute(ids)]
    members: dict[str, list[str]] = {p: [] for p in wanted}
    for chunk in _chunks(wanted):
        rows = connection.execute(
            sa_select(_MEMBER.c.person_id, _MEMBER.c.subject).where(_MEMBER.c.person_id.in_(chunk))
        )
        for person, subject in rows:
            members[str(person)].append(str(subject))
    return [(p, sorted(members[p])) for p in wanted]
