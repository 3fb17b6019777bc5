"""What a reader may see of a subject for a purpose now: the shared core of reads and decisions.

A linked person is read whole: every pseudonym's contributions, under the most restrictive
consent of them all (invariant 8); one restricted pseudonym stops the use of all of them.
Profile reads (:mod:`.read`) and decisions (:mod:`server.decisions`) both go through
:func:`visible_profile`, so a decision can never see more than a read for the same purpose.

Reads are on the routing path, so round trips are counted: :func:`standing_of` answers
"known? linked? restricted?" (and any flag a caller adds, such as a refusal of automated
decisions) in one statement for a pseudonym that stands alone, the common case; then one
query each for the fields of every member, their consent records, their suppressed fields
(for both the consent check and the merge) and the published notices.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Exists, Table
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from consent import ConsentState, FieldCatalogue, Purpose, evaluate
from privacy import FieldCipher, MasterKeyRing

from ..crud.consent import consent_states
from ..crud.profile_store import is_expired
from ..crud.restriction import restricted_among
from ..crud.subject_keys import subject_cipher
from ..identity.graph import members_of
from ..tables.field_suppression import FieldSuppression
from ..tables.identity import PersonMember
from ..tables.profile_field import ProfileField
from ..tables.restriction import SubjectRestriction
from ..tables.subject import Subject
from .view import MergedView, merged_fields

_SUBJECT = Subject.metadata.tables[Subject.__tablename__]
_MEMBER = PersonMember.metadata.tables[PersonMember.__tablename__]
_RESTRICTION = SubjectRestriction.metadata.tables[SubjectRestriction.__tablename__]
_SUPPRESSION = FieldSuppression.metadata.tables[FieldSuppression.__tablename__]


@dataclass(frozen=True)
class Standing:
    """Who a pseudonym is now, before any of its fields is read.

    Attributes
    ----------
    known : bool
        The server holds the pseudonym (a ``subject`` row).
    person : str or None
        The person id when the pseudonym is linked to others.
    members : list[str]
        The pseudonyms to read (sorted): one, or every member of the person.
    restricted : bool
        Any member's processing is restricted.
    flags : dict[str, bool]
        Per flag asked for: whether any member has a row in the flag's table.
    """

    known: bool
    person: str | None
    members: list[str]
    restricted: bool
    flags: dict[str, bool] = field(default_factory=dict)


def _any_row(table: Table, subjects: list[str]) -> Exists:
    """``EXISTS`` a row of ``table`` (keyed by a ``subject`` column) for one of ``subjects``."""
    column = table.c.subject
    where = column == subjects[0] if len(subjects) == 1 else column.in_(subjects)
    return sa_select(column).where(where).exists()


def standing_of(
    session: Session, subject: str, *, flags: Mapping[str, Table] | None = None
) -> Standing:
    """Read whether ``subject`` is known, linked and restricted (one statement when alone).

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym.
    flags : Mapping[str, Table] or None
        Extra yes/no questions answered in the same statement: flag name → a table with a
        ``subject`` column; the flag is set when any member has a row in it.

    Returns
    -------
    Standing
        For a linked pseudonym, members, restriction and flags cover the whole person (a
        few more queries, as :func:`server.identity.graph.members_of` reads them).
    """
    asked = dict(flags or {})
    alone = [subject]
    columns: list[Any] = [
        sa_select(_SUBJECT.c.pseudonym).where(_SUBJECT.c.pseudonym == subject).exists(),
        sa_select(_MEMBER.c.person_id).where(_MEMBER.c.subject == subject).scalar_subquery(),
        _any_row(_RESTRICTION, alone),
        *(_any_row(table, alone) for table in asked.values()),
    ]
    known, person, restricted, *answers = session.connection().execute(sa_select(*columns)).one()
    if person is None:
        return Standing(bool(known), None, alone, bool(restricted),
                        {n: bool(a) for n, a in zip(asked, answers, strict=True)})  # fmt: skip
    members = members_of(session, subject)
    answers = [
        session.connection().execute(sa_select(_any_row(table, members))).scalar_one()
        for table in asked.values()
    ]  # fmt: skip
    return Standing(
        known=bool(known), person=str(person) if len(members) > 1 else None, members=members,
        restricted=bool(restricted_among(session=session, subjects=members)),
        flags={n: bool(a) for n, a in zip(asked, answers, strict=True)},
    )  # fmt: skip


def _fields_of(session: Session, members: list[str]) -> list[ProfileField]:
    """Every member's stored fields in one query: member by member, each by name."""
    where = (
        col(ProfileField.subject) == members[0]
        if len(members) == 1
        else col(ProfileField.subject).in_(members)
    )
    rows = list(session.exec(select(ProfileField).where(where).order_by(col(ProfileField.name))))
    order = {member: i for i, member in enumerate(members)}
    rows.sort(key=lambda row: order[row.subject])  # stable: names stay in the database's order
    return rows


def _suppressions(session: Session, members: list[str]) -> tuple[set[str], dict[str, set[str]]]:
    """All suppressed names (for the merge), and per member those consent hides (not rectified).

    A rectified field holds the corrected value: uploads are refused, but reads treat it as
    any other field (see :func:`server.crud.consent.consent_states`).
    """
    rows = session.connection().execute(
        sa_select(_SUPPRESSION.c.subject, _SUPPRESSION.c.field, _SUPPRESSION.c.reason).where(
            _SUPPRESSION.c.subject.in_(members)
        )
    )
    names: set[str] = set()
    hidden: dict[str, set[str]] = defaultdict(set)
    for subject, name, reason in rows:
        names.add(str(name))
        if reason != "rectified":
            hidden[str(subject)].add(str(name))
    return names, hidden


@dataclass
class VisibleProfile:
    """A subject's (or their person's) fields a purpose may use now.

    Attributes
    ----------
    members : list[str]
        The pseudonyms read (one, or every member of the linked person).
    person : str or None
        The person id when the subject is linked to others.
    restricted : bool
        Processing is restricted (PIPL Art. 44, GDPR Art. 18): ``view`` is empty.
    view : MergedView
        Allowed, merged fields and the names withheld.
    states : dict[str, ConsentState]
        Each member's consent state.
    """

    members: list[str]
    person: str | None
    restricted: bool
    view: MergedView
    states: dict[str, ConsentState] = field(default_factory=dict)

    def purpose_granted(self, purpose: Purpose, at: datetime) -> bool:
        """Whether every member's consent grants ``purpose`` now (the most restrictive)."""
        return all(
            (self.states.get(m) or ConsentState()).is_granted(purpose, at) for m in self.members
        )


def visible_profile(
    *,
    session: Session,
    subject: str,
    purpose: Purpose,
    catalogue: FieldCatalogue,
    at: datetime,
    master_keys: MasterKeyRing | None = None,
    breakdown: bool = False,
    standing: Standing | None = None,
) -> VisibleProfile:
    """Merge the fields of ``subject`` (and linked pseudonyms) that ``purpose`` may use at ``at``.

    ``standing`` is :func:`standing_of` the subject when the caller already read it (in the
    same transaction); otherwise it is read here. Reads only; audits nothing and commits
    nothing (the caller records what it did).
    """
    if standing is None:
        standing = standing_of(session, subject)
    members, person = standing.members, standing.person
    rows = _fields_of(session, members)
    if standing.restricted:
        withheld = {row.name for row in rows}
        return VisibleProfile(members, person, True, MergedView(withheld=withheld))
    suppressed, hidden = _suppressions(session, members)
    states = consent_states(session=session, subjects=members, suppressed=hidden)
    ciphers: dict[str, FieldCipher | None] = {}

    def cipher_for(row: ProfileField) -> FieldCipher | None:
        if master_keys is None:
            return None
        if row.subject not in ciphers:
            ciphers[row.subject] = subject_cipher(
                session=session, subject=row.subject, master_keys=master_keys
            )
        return ciphers[row.subject]

    def allowed(name: str) -> bool:
        return all(
            evaluate(
                catalogue=catalogue, consent=states.get(m) or ConsentState(), field=name,
                purpose=purpose, at=at,
            ).allowed
            for m in members
        )  # fmt: skip

    view = merged_fields(
        rows,
        catalogue=catalogue,
        allowed=allowed,
        fresh=lambda row: not is_expired(row=row, catalogue=catalogue, at=at),
        cipher_for=cipher_for,
        breakdown=breakdown,
        suppressed=suppressed,
    )
    return VisibleProfile(members, person, False, view, dict(states))
