"""Renaming a subject's pseudonym in every row that holds it (the re-keying storage step).

``server.crud.rekey`` decides which pairs to rename; this module does it, inside the caller's
transaction: new subject rows, data keys moved and sealed fields re-sealed, every pseudonym
column found by walking ``SQLModel.metadata`` (so tables added later are covered), consent
event hashes recomputed and stored upload answers rewritten. The audit log is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, String, Table, bindparam, insert, text, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel

from consent import ConsentEvent
from privacy import MasterKeyRing

from .. import tables as _all_tables  # noqa: F401  (register every table before the walk)
from ..tables.consent_record import ConsentRecord
from ..tables.profile_field import ProfileField
from ..tables.subject import Subject
from ..tables.subject_key import SubjectKey
from ..tables.upload_receipt import UploadReceipt
from .consent import event_hash
from .subject_keys import rebind_subject_key

_SUBJECT = Subject.metadata.tables[Subject.__tablename__]
_PROFILE = ProfileField.metadata.tables[ProfileField.__tablename__]
_CONSENT = ConsentRecord.metadata.tables[ConsentRecord.__tablename__]
_KEY = SubjectKey.metadata.tables[SubjectKey.__tablename__]
_RECEIPT = UploadReceipt.metadata.tables[UploadReceipt.__tablename__]
#: Columns of ``consent_record`` that make up the ``ConsentEvent`` (hashed after a rename).
_EVENT_FIELDS = tuple(ConsentEvent.model_fields)
#: Tables never rewritten: the subject table itself (handled apart) and the audit log.
_NOT_RENAMED = frozenset({"subject", "audit_entry", "audit_head", "audit_checkpoint"})
#: Names of plain (not foreign-key) string columns that hold a pseudonym.
_PSEUDONYM_COLUMN_NAMES = frozenset({"subject"})
#: Pseudonyms per ``IN (...)`` query.
CHUNK = 500
_PSEUDONYM = re.compile(r"ps_[0-9a-f]{64}")


def pseudonym_columns() -> list[Column[str]]:
    """Return every column holding a subject's pseudonym, outside ``subject`` and the audit log.

    Found from the registered metadata: a foreign key to ``subject.pseudonym``, or a string
    column named ``subject`` (data-subject requests keep theirs without a foreign key). A new
    table with either is re-keyed without changing this module.

    Returns
    -------
    list[Column[str]]
        The columns, by table in dependency order.
    """
    found: list[Column[str]] = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name in _NOT_RENAMED:
            continue
        for column in table.columns:
            references = any(fk.column.table is _SUBJECT for fk in column.foreign_keys)
            named = column.name in _PSEUDONYM_COLUMN_NAMES and _is_text(column)
            if references or named:
                found.append(column)
    return found


def _is_text(column: Column[object]) -> bool:
    """Return whether a column stores strings (``String``, or a decorator over one)."""
    kind = column.type
    return isinstance(kind, String) or isinstance(getattr(kind, "impl", None), String)


def chunks(values: Sequence[str]) -> Iterator[list[str]]:
    """Yield ``values`` in lists of at most ``CHUNK`` (for ``IN (...)`` queries).

    Parameters
    ----------
    values : Sequence[str]
        The values, in the order to keep.

    Yields
    ------
    list[str]
        Consecutive slices.
    """
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def create_subjects(session: Session, rename: Mapping[str, str]) -> None:
    """Insert the new subject rows with the old rows' first/last-seen times (no commit).

    Parameters
    ----------
    session : Session
        Session of the re-keying batch.
    rename : Mapping[str, str]
        Old pseudonym -> new pseudonym, each old one held and each new one free.
    """
    connection = session.connection()
    for chunk in chunks(sorted(rename)):
        rows = connection.execute(sa_select(_SUBJECT).where(_SUBJECT.c.pseudonym.in_(chunk)))
        values = [
            {"pseudonym": rename[str(r.pseudonym)], "first_seen_at": r.first_seen_at,
             "last_seen_at": r.last_seen_at}
            for r in rows
        ]  # fmt: skip
        connection.execute(insert(_SUBJECT), values)


def move_keys(session: Session, rename: Mapping[str, str], master_keys: MasterKeyRing) -> int:
    """Move data keys to the new pseudonyms and re-seal their sealed fields (no commit).

    Sealed fields stay under the old pseudonym's row until :func:`rename_columns`; the
    ciphertexts are bound to the new pseudonym from here on.

    Parameters
    ----------
    session : Session
        Session of the re-keying batch (the new subject rows exist).
    rename : Mapping[str, str]
        Old pseudonym -> new pseudonym.
    master_keys : MasterKeyRing
        Unwraps the old binding and wraps the new one under the primary key.

    Returns
    -------
    int
        Fields re-sealed.

    Raises
    ------
    DecryptionError
        If a data key or a sealed field does not open (opaque).
    """
    connection = session.connection()
    keyed: list[str] = []
    for chunk in chunks(sorted(rename)):
        query = sa_select(_KEY.c.subject).where(_KEY.c.subject.in_(chunk))
        keyed.extend(str(r[0]) for r in connection.execute(query))
    resealed = 0
    for old in sorted(keyed):
        new = rename[old]
        ciphers = rebind_subject_key(session=session, old=old, new=new, master_keys=master_keys)
        if ciphers is None:
            continue
        before, after = ciphers
        sealed = connection.execute(
            sa_select(_PROFILE.c.id, _PROFILE.c.name, _PROFILE.c.value_ciphertext).where(
                _PROFILE.c.subject == old, _PROFILE.c.value_ciphertext.is_not(None)
            )
        ).all()
        for row_id, name, ciphertext in sealed:
            plaintext = before.decrypt(field=str(name), ciphertext=bytes(ciphertext))
            connection.execute(
                update(_PROFILE)
                .where(_PROFILE.c.id == row_id)
                .values(
                    value_ciphertext=after.encrypt(field=str(name), plaintext=plaintext),
                    key_version=after.key_version,
                )
            )
            resealed += 1
    return resealed


def _bulk_update(
    connection: Connection,
    *,
    table: Table,
    match: Column[Any],
    target: str,
    pairs: Sequence[tuple[Any, Any]],
) -> int:
    """Set ``target`` to each pair's second value where ``match`` equals its first; rows changed.

    PostgreSQL gets one ``UPDATE ... FROM unnest(array, array)`` (one round trip, a short
    statement whatever the number of pairs); SQLite an ``executemany`` (in-process, fast).
    Table and column names come from the registered metadata, never from a request.
    """
    if not pairs:
        return 0
    if connection.dialect.name == "postgresql":
        kind = "bigint" if match.type.python_type is int else "text"
        unnest = text(
            f'UPDATE "{table.name}" SET "{target}" = m.v '
            f"FROM unnest(CAST(:k AS {kind}[]), CAST(:v AS text[])) AS m(k, v) "
            f'WHERE "{table.name}"."{match.name}" = m.k'
        )
        keys, news = [k for k, _ in pairs], [v for _, v in pairs]
        return connection.execute(unnest, {"k": keys, "v": news}).rowcount
    statement = update(table).where(match == bindparam("_k")).values({target: bindparam("_v")})
    return connection.execute(statement, [{"_k": k, "_v": v} for k, v in pairs]).rowcount


def rename_columns(session: Session, rename: Mapping[str, str]) -> dict[str, int]:
    """Rename every pseudonym column's old values to the new ones (no commit).

    Parameters
    ----------
    session : Session
        Session of the re-keying batch.
    rename : Mapping[str, str]
        Old pseudonym -> new pseudonym.

    Returns
    -------
    dict[str, int]
        Rows renamed per table (every table with a pseudonym column listed).
    """
    connection = session.connection()
    counts: dict[str, int] = {}
    olds = sorted(rename)
    for column in pseudonym_columns():
        table: Table = column.table
        present: list[str] = []
        for chunk in chunks(olds):  # only the subjects this table holds: fewer statements
            query = sa_select(column).where(column.in_(chunk)).distinct()
            present.extend(str(r[0]) for r in connection.execute(query))
        renamed = _bulk_update(
            connection, table=table, match=column, target=column.name,
            pairs=[(old, rename[old]) for old in sorted(present)],
        )  # fmt: skip
        counts[table.name] = counts.get(table.name, 0) + max(renamed, 0)
    return counts


def rehash_consents(session: Session, news: Sequence[str]) -> None:
    """Recompute the event hash of the renamed subjects' consent records (no commit).

    The hash covers the subject, so an edge re-sending a re-keyed event is still recognised
    as a duplicate.

    Parameters
    ----------
    session : Session
        Session of the re-keying batch.
    news : Sequence[str]
        The new pseudonyms (all their records were renamed in this batch).
    """
    connection = session.connection()
    changes: list[tuple[int, str]] = []
    for chunk in chunks(sorted(news)):
        rows = connection.execute(sa_select(_CONSENT).where(_CONSENT.c.subject.in_(chunk)))
        for row in rows.mappings():
            event = ConsentEvent.model_validate({name: row[name] for name in _EVENT_FIELDS})
            changes.append((int(row["id"]), event_hash(event)))
    _bulk_update(connection, table=_CONSENT, match=_CONSENT.c.id, target="event_hash",
                 pairs=changes)  # fmt: skip


def rewrite_receipts(session: Session, rename: Mapping[str, str]) -> int:
    """Rewrite stored upload answers that name an old pseudonym (no commit).

    One pass over the stored answers per batch (they are few per subject, and only replays of
    an edge's retries read them).

    Parameters
    ----------
    session : Session
        Session of the re-keying batch.
    rename : Mapping[str, str]
        Old pseudonym -> new pseudonym.

    Returns
    -------
    int
        Receipts rewritten.
    """
    connection = session.connection()
    rewritten = 0
    query = sa_select(_RECEIPT.c.id, _RECEIPT.c.response_json).where(
        _RECEIPT.c.response_json.contains("ps_", autoescape=True)
    )
    changes: list[tuple[int, str]] = []
    for receipt_id, stored in connection.execute(query):
        new_text = _PSEUDONYM.sub(lambda m: rename.get(m.group(0), m.group(0)), str(stored))
        if new_text != stored:
            changes.append((int(receipt_id), new_text))
    for receipt_id, new_text in changes:
        connection.execute(
            update(_RECEIPT).where(_RECEIPT.c.id == receipt_id).values(response_json=new_text)
        )
        rewritten += 1
    return rewritten
