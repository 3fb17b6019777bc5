"""Erasure and crypto-shredding: after erasure nothing names the subject and its sealed fields,
backups included, open with no remaining key, while other subjects are unaffected."""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from consent import Purpose, load_default_catalogue
from models import Channel, EdgeRegistration
from privacy import DecryptionError, SigningKey
from privacy.crypto import FieldCipher
from privacy.keyring import DataKey, MasterKey, MasterKeyRing, WrappedDataKey
from privacy.master_keys import create_master_key_file, load_master_key_file
from server.audit.log import subject_commitment, verify_chain
from server.audit.sink import DatabaseAuditSink
from server.crud.consent import record_consents
from server.crud.edge import register_edge
from server.crud.erasure import (
    erase_subject,
    erase_with_evidence,
    loose_subject_columns,
    subject_tables,
)
from server.crud.key_rotation import rotate_master_key
from server.crud.profile_store import fields_of, to_field_out
from server.crud.subject_keys import subject_cipher
from server.crud.upload import upload_profile
from server.db import create_db_engine, upgrade_database
from server.errors import NotFoundError
from server.principal import Principal
from server.profiles.read import read_profile
from server.tables.audit_entry import AuditEntry, AuditHead
from server.tables.edge import Edge
from server.tables.subject_key import SubjectKey
from server.tables.token import Role

from ..factories import T0, make_consent_event, make_field, make_pseudonym, make_upload

CATALOGUE = load_default_catalogue()
RISK = "finance.payment_risk_level"
SUBJECT_A = make_pseudonym("erasure-subject-a")
SUBJECT_B = make_pseudonym("erasure-subject-b")
#: Distinctive sensitive values, so their absence from raw bytes means something.
VALUES = {SUBJECT_A: "very_high", SUBJECT_B: "very_low"}
ADMIN = Principal(role=Role.ADMIN)


def _populate(engine: Engine, ring: MasterKeyRing) -> None:
    """Two subjects with separate consent, a sealed and a plain field each, and a read of A."""
    with Session(engine, expire_on_commit=False) as session:
        credential = register_edge(
            session=session, registration=EdgeRegistration(name="app-1", channel=Channel.APP),
            actor="admin", role="admin", audit=DatabaseAuditSink(session), at=T0,
        )
        edge = Principal(role=Role.EDGE, edge_id=credential.edge_id, channel="app")
        events = [
            event
            for subject in VALUES
            for event in (make_consent_event(subject, Purpose.RISK_CONTROL, separate=True),
                          make_consent_event(subject))
        ]
        record_consents(session=session, events=events, principal=edge, catalogue=CATALOGUE,
                        audit=DatabaseAuditSink(session), at=T0)
        for subject, value in VALUES.items():
            for purpose, field, key in (("risk_control", make_field(RISK, value), "risk"),
                                        ("personalized_service", None, "tags")):
                upload = make_upload(purpose, None if field is None else [field])
                upload_profile(
                    session=session, subject=subject, upload=upload, principal=edge,
                    idempotency_key=f"{key}-{subject[-6:]}", catalogue=CATALOGUE,
                    audit=DatabaseAuditSink(session), at=T0, master_keys=ring,
                )
        read_profile(session=session, subject=SUBJECT_A, purpose="personalized_service",
                     principal=ADMIN, catalogue=CATALOGUE, audit=DatabaseAuditSink(session),
                     at=T0)


def _references(engine: Engine, needle: str) -> list[str]:
    """Every ``table.column`` holding ``needle`` somewhere in its value."""
    found = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(sa_select(table)).mappings():
                for column, value in row.items():
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if needle in text:
                        found.append(f"{table.name}.{column}")
    return found


@dataclass
class SealedCopy:
    """What a database copy holds for one subject: its wrapped key and sealed field."""

    wrapped: WrappedDataKey
    ciphertext: bytes
    key_version: int


def _sealed_in_backup(path: Path, subject: str) -> SealedCopy:
    with sqlite3.connect(path) as conn:
        kid, version, blob = conn.execute(
            "SELECT master_kid, key_version, wrapped_key FROM subject_key WHERE subject = ?",
            (subject,),
        ).fetchone()
        ciphertext, field_version = conn.execute(
            "SELECT value_ciphertext, key_version FROM profile_field "
            "WHERE subject = ? AND name = ?", (subject, RISK),
        ).fetchone()
    conn.close()
    return SealedCopy(WrappedDataKey(master_kid=kid, version=version, blob=bytes(blob)),
                      bytes(ciphertext), field_version)


def _backup(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (WAL included), as a backup job takes it."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@pytest.fixture()
def database(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    path = tmp_path / "db" / "server.sqlite"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    engine = create_db_engine(url)
    yield engine, path
    engine.dispose()


def _raw_bytes(db_path: Path) -> bytes:
    """The database file and its write-ahead log, as they sit on disk."""
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _open_attempts(
    copy: SealedCopy, subject: str, ring: MasterKeyRing, data_keys: list[DataKey]
) -> list[Callable[[], object]]:
    """Every way the remaining keys could open ``copy``: unwrap its key, or decrypt directly."""
    relabelled = [
        WrappedDataKey(master_kid=mk.kid, version=copy.wrapped.version, blob=copy.wrapped.blob)
        for mk in (ring.primary,)
    ]
    attempts: list[Callable[[], object]] = [
        functools.partial(ring.unwrap, copy.wrapped, subject=subject),
        *[functools.partial(ring.primary.unwrap, w, subject=subject) for w in relabelled],
    ]
    for key in data_keys:
        for owner in (subject, SUBJECT_B):
            cipher = FieldCipher(subject=owner, data_key=key)
            attempts.append(functools.partial(cipher.decrypt, field=RISK,
                                              ciphertext=copy.ciphertext))
    return attempts


def test_crypto_shredding_backup_of_erased_subject_opens_with_no_remaining_key(
    database: tuple[Engine, Path], tmp_path: Path
) -> None:
    # Prepare: two subjects' sealed fields, a backup of the database, the key file.
    engine, db_path = database
    key_file = tmp_path / "keys" / "master.key"
    ring_before = create_master_key_file(key_file)
    _populate(engine, ring_before)
    backup = tmp_path / "backup.sqlite"
    _backup(db_path, backup)
    a_copy, b_copy = _sealed_in_backup(backup, SUBJECT_A), _sealed_in_backup(backup, SUBJECT_B)
    assert all(v.encode() not in _raw_bytes(db_path) for v in VALUES.values())
    assert all(v.encode() not in backup.read_bytes() for v in VALUES.values())
    # Control: before the rotation the backup's wrapped key opens, so the checks below fail
    # if shredding does not reach backups.
    a_before = FieldCipher(subject=SUBJECT_A,
                           data_key=ring_before.unwrap(a_copy.wrapped, subject=SUBJECT_A))
    assert b"very_high" in a_before.decrypt(field=RISK, ciphertext=a_copy.ciphertext)

    # Execute: erase A, then rotate the master key (what carries the erasure into backups).
    with Session(engine, expire_on_commit=False) as session:
        receipt = erase_subject(session=session, subject=SUBJECT_A, at=T0 + timedelta(days=1))
        session.commit()
        rotation = rotate_master_key(session=session, key_file=key_file,
                                     at=T0 + timedelta(days=1))

    # Assert: every remaining key (master key ring, B's data key) fails on A's backup copy.
    remaining = load_master_key_file(key_file)
    with Session(engine) as session:
        b_row = session.get(SubjectKey, SUBJECT_B)
        assert b_row is not None and session.get(SubjectKey, SUBJECT_A) is None
        b_key = remaining.unwrap(WrappedDataKey(master_kid=b_row.master_kid,
                                                version=b_row.key_version,
                                                blob=b_row.wrapped_key), subject=SUBJECT_B)
    attempts = _open_attempts(a_copy, SUBJECT_A, remaining, [b_key])
    for attempt in attempts:
        with pytest.raises(DecryptionError):
            attempt()
    assert len(attempts) == 4
    assert rotation.retired_kids == ring_before.kids
    assert receipt.backups_pending_master_kid == ring_before.primary.kid
    # B is unaffected: its backup ciphertext still opens with its live key.
    b_cipher = FieldCipher(subject=SUBJECT_B, data_key=b_key)
    assert b"very_low" in b_cipher.decrypt(field=RISK, ciphertext=b_copy.ciphertext)


def test_erasure_leaves_no_reference_but_audit_commitments(
    database: tuple[Engine, Path], tmp_path: Path
) -> None:
    engine, _ = database
    ring = create_master_key_file(tmp_path / "master.key")
    _populate(engine, ring)
    with Session(engine) as session:
        a_entries = len(session.exec(
            select(AuditEntry).where(AuditEntry.subject_ref == SUBJECT_A)).all())

    with Session(engine, expire_on_commit=False) as session:
        receipt = erase_subject(session=session, subject=SUBJECT_A, at=T0 + timedelta(days=1))
        session.commit()

    assert _references(engine, SUBJECT_A) == []
    assert _references(engine, SUBJECT_A.removeprefix("ps_")) == []
    with Session(engine) as session:
        unlinked = session.exec(select(AuditEntry).where(
            AuditEntry.subject_commitment.is_not(None),  # type: ignore[union-attr]
            AuditEntry.subject_ref.is_(None),  # type: ignore[union-attr]
        )).all()
        assert len(unlinked) == a_entries == receipt.audit_entries_unlinked >= 4
        assert verify_chain(session=session).ok
        b_rows = fields_of(session=session, subject=SUBJECT_B)
        b_cipher = subject_cipher(session=session, subject=SUBJECT_B, master_keys=ring)
        assert {r.name: to_field_out(r, cipher=b_cipher).value for r in b_rows} == {
            RISK: VALUES[SUBJECT_B], "tag.high_purchasing_power": True,
            "feature.recency_days": 12,
        }
        assert len(session.exec(select(SubjectKey)).all()) == 1


def test_erasure_receipt_counts_and_names_no_subject(
    database: tuple[Engine, Path], tmp_path: Path
) -> None:
    engine, _ = database
    ring = create_master_key_file(tmp_path / "master.key")
    _populate(engine, ring)
    with Session(engine) as session:
        wrapped = session.get(SubjectKey, SUBJECT_A)
        assert wrapped is not None
        wrapped_blob = wrapped.wrapped_key

    with Session(engine, expire_on_commit=False) as session:
        receipt = erase_subject(session=session, subject=SUBJECT_A, at=T0)
        session.commit()

    assert receipt.subject_found
    core = {
        "consent_record": 2, "profile_field": 3, "subject": 1, "subject_key": 1,
        "upload_receipt": 2, "data_subject_request (unlinked)": 0,
        "field_suppression": 0, "subject_event": 0, "subject_restriction": 0,
    }
    assert {name: receipt.deleted.get(name) for name in core} == core
    # Every table that can name a subject is listed, even where nothing was found.
    listed = {t.name for t in subject_tables()} | {t.name for t, _ in loose_subject_columns()}
    assert listed - {"data_subject_request"} <= set(receipt.deleted)
    assert all(n == 0 for name, n in receipt.deleted.items() if name not in core)
    assert receipt.key_destruction is not None
    assert receipt.key_destruction.wrapped_key_sha256 == hashlib.sha256(wrapped_blob).hexdigest()
    assert receipt.subject_commitment == subject_commitment(receipt.commitment_salt, SUBJECT_A)
    assert SUBJECT_A not in repr(receipt) and SUBJECT_A[3:] not in repr(receipt)


def test_erase_unknown_subject_still_unlinks_its_audit_entries(db_session: Session) -> None:
    stranger = make_pseudonym("never-stored")
    db_session.add(AuditHead())  # create_all does not insert the head row the migration does
    db_session.commit()
    with pytest.raises(NotFoundError):  # audited as not_found, with the pseudonym
        read_profile(session=db_session, subject=stranger, purpose="marketing",
                     principal=ADMIN, catalogue=CATALOGUE, audit=DatabaseAuditSink(db_session),
                     at=T0)

    receipt = erase_subject(session=db_session, subject=stranger, at=T0)
    db_session.commit()

    assert not receipt.subject_found and receipt.key_destruction is None
    assert receipt.audit_entries_unlinked == 1
    assert db_session.exec(select(AuditEntry).where(AuditEntry.subject_ref == stranger)).all() \
        == []


def test_subject_tables_lists_every_table_referencing_subjects() -> None:
    names = {t.name for t in subject_tables()}

    assert {"profile_field", "consent_record", "subject_key"} <= names
    assert "subject" not in names and "audit_entry" not in names


@pytest.mark.postgres
def test_erasure_on_postgres_leaves_no_reference(postgres_url: str) -> None:
    upgrade_database(postgres_url)
    engine = create_db_engine(postgres_url)
    ring = MasterKeyRing([MasterKey.generate()])
    try:
        _populate(engine, ring)
        with Session(engine, expire_on_commit=False) as session:
            erase_subject(session=session, subject=SUBJECT_A, at=T0)
            session.commit()
        refs = _references(engine, SUBJECT_A)
        with Session(engine) as session:
            b_cipher = subject_cipher(session=session, subject=SUBJECT_B, master_keys=ring)
            report = verify_chain(session=session)
    finally:
        engine.dispose()
    assert refs == [] and report.ok and b_cipher is not None


def test_stale_consent_events_cannot_bring_an_erased_subject_back(
    database: tuple[Engine, Path], tmp_path: Path
) -> None:
    engine, _ = database
    ring = create_master_key_file(tmp_path / "master.key")
    _populate(engine, ring)
    with Session(engine, expire_on_commit=False) as session:
        erase_with_evidence(
            session=session, subject=SUBJECT_A, request_id=None, actor="admin", role="admin",
            audit=DatabaseAuditSink(session), signing_key=SigningKey.generate(), at=T0,
        )
        session.commit()
    edge = Principal(role=Role.EDGE, edge_id=_edge_id(engine), channel="app")

    # An edge that missed the erasure re-sends the subject's old grant, and a new one.
    with Session(engine, expire_on_commit=False) as session:
        stale = record_consents(
            session=session,
            events=[make_consent_event(SUBJECT_A, channel="app")],
            principal=edge, catalogue=CATALOGUE, audit=DatabaseAuditSink(session),
            at=T0 + timedelta(hours=1),
        )
    with Session(engine, expire_on_commit=False) as session:
        fresh = record_consents(
            session=session,
            events=[make_consent_event(SUBJECT_A, occurred_at=T0 + timedelta(days=2))],
            principal=edge, catalogue=CATALOGUE, audit=DatabaseAuditSink(session),
            at=T0 + timedelta(days=2),
        )

    assert (stale.recorded, stale.refused_erased) == (0, 1)
    assert (fresh.recorded, fresh.refused_erased) == (1, 0)  # came back and consented anew


def _edge_id(engine: Engine) -> str:
    with Session(engine) as session:
        edge = session.exec(select(Edge)).first()
        assert edge is not None
        return edge.id
