"""Re-keying on the server: every table follows the new pseudonym, the audit log stays intact."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from consent import ConsentStatus, Purpose, load_default_catalogue
from models import Channel, EdgeRegistration, RekeyBatch, RekeyBatchResult, RekeyPair
from privacy.keyring import MasterKey, MasterKeyRing
from server.audit.entry_hash import subject_commitment
from server.audit.log import verify_chain
from server.audit.sink import DatabaseAuditSink
from server.crud.consent import consent_states, event_hash, record_consents, to_event
from server.crud.edge import register_edge
from server.crud.erasure import erase_subject
from server.crud.rekey import aliases_of, apply_rekey_batch, unlink_alias_audit_refs
from server.crud.rekey_rows import pseudonym_columns
from server.crud.subject_keys import subject_cipher
from server.crud.tombstone import tombstones_of, write_tombstone
from server.crud.upload import upload_profile
from server.db import create_db_engine, upgrade_database
from server.errors import ConflictError, NotFoundError
from server.principal import Principal
from server.profiles.read import read_profile
from server.tables.audit_entry import AuditEntry
from server.tables.consent_record import ConsentRecord
from server.tables.field_suppression import FieldSuppression
from server.tables.restriction import SubjectRestriction
from server.tables.subject_alias import SubjectAlias
from server.tables.token import Role

from ..factories import T0, make_consent_event, make_field, make_pseudonym, make_upload

CATALOGUE = load_default_catalogue()
RISK = "finance.payment_risk_level"
TAGS = "personalized_service"
A, A2, A3 = (make_pseudonym(f"rekey-a-{n}") for n in (1, 2, 3))
B, B2 = make_pseudonym("rekey-b-1"), make_pseudonym("rekey-b-2")
KID1, KID2, KID3 = "tk_" + "1" * 16, "tk_" + "2" * 16, "tk_" + "3" * 16
ADMIN = Principal(role=Role.ADMIN)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'server.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade_database(url)
    engine = create_db_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture()
def ring() -> MasterKeyRing:
    return MasterKeyRing([MasterKey.generate()])


@pytest.fixture()
def edge(engine: Engine) -> Principal:
    with Session(engine, expire_on_commit=False) as session:
        credential = register_edge(
            session=session,
            registration=EdgeRegistration(name="app-1", channel=Channel.APP),
            actor="admin",
            role="admin",
            audit=DatabaseAuditSink(session),
            at=T0,
        )
    return Principal(role=Role.EDGE, edge_id=credential.edge_id, channel="app")


def _populate(engine: Engine, edge: Principal, ring: MasterKeyRing, subject: str) -> None:
    """Consent (with separate consent for risk control), a plain and a sealed field, a read."""
    with Session(engine, expire_on_commit=False) as session:
        events = [
            make_consent_event(subject, Purpose.RISK_CONTROL, separate=True),
            make_consent_event(subject),
        ]
        record_consents(
            session=session,
            events=events,
            principal=edge,
            catalogue=CATALOGUE,
            audit=DatabaseAuditSink(session),
            at=T0,
        )
        for purpose, fields, key in (
            ("risk_control", [make_field(RISK, "very_high")], "risk"),
            (TAGS, None, "tags"),
        ):
            upload_profile(
                session=session,
                subject=subject,
                upload=make_upload(purpose, fields),
                principal=edge,
                idempotency_key=f"{key}-{subject[-8:]}",
                catalogue=CATALOGUE,
                audit=DatabaseAuditSink(session),
                at=T0,
                master_keys=ring,
            )
        _read(engine, ring, subject, TAGS)


def _read(engine: Engine, ring: MasterKeyRing, subject: str, purpose: str) -> dict[str, object]:
    with Session(engine, expire_on_commit=False) as session:
        profile = read_profile(
            session=session,
            subject=subject,
            purpose=purpose,
            principal=ADMIN,
            catalogue=CATALOGUE,
            audit=DatabaseAuditSink(session),
            at=T0,
            master_keys=ring,
        )
    return {f.name: f.value for f in profile.fields}


def _rekey(
    engine: Engine,
    edge: Principal,
    ring: MasterKeyRing,
    pairs: dict[str, str],
    *,
    from_kid: str = KID1,
    to_kid: str = KID2,
) -> RekeyBatchResult:
    batch = RekeyBatch(
        from_kid=from_kid, to_kid=to_kid, pairs=[RekeyPair(old=o, new=n) for o, n in pairs.items()]
    )
    with Session(engine, expire_on_commit=False) as session:
        return apply_rekey_batch(
            session=session,
            batch=batch,
            principal=edge,
            audit=DatabaseAuditSink(session),
            master_keys=ring,
            at=T0,
        )


def _holders(engine: Engine, needle: str) -> set[str]:
    """Every ``table.column`` holding ``needle`` in its value."""
    found = set()
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(sa_select(table)).mappings():
                for column, value in row.items():
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if needle in text:
                        found.add(f"{table.name}.{column}")
    return found


def test_rekey_when_applied_then_new_pseudonym_reads_same_fields_and_old_finds_nothing(
    engine: Engine, edge: Principal, ring: MasterKeyRing
) -> None:
    _populate(engine, edge, ring, A)
    _populate(engine, edge, ring, B)
    before = {p: _read(engine, ring, A, p) for p in (TAGS, "risk_control")}

    result = _rekey(engine, edge, ring, {A: A2})

    assert (result.applied, result.already_applied, result.unknown) == (1, 0, 0)
    assert result.fields_resealed == 1
    assert result.rows_renamed["profile_field"] == 3
    assert result.rows_renamed["consent_record"] == 2
    assert {p: _read(engine, ring, A2, p) for p in (TAGS, "risk_control")} == before
    assert before["risk_control"] == {RISK: "very_high"}
    with pytest.raises(NotFoundError):
        _read(engine, ring, A, TAGS)
    # Only the audit log (never rewritten) and the alias record still hold the old pseudonym.
    assert _holders(engine, A) == {"audit_entry.subject_ref", "subject_alias.old_pseudonym"}
    with Session(engine) as session:
        states = consent_states(session=session, subjects=[A2])
        assert states[A2].is_granted(Purpose.RISK_CONTROL, T0)
        assert subject_cipher(session=session, subject=A, master_keys=ring) is None
        assert subject_cipher(session=session, subject=A2, master_keys=ring) is not None
        for record in session.exec(select(ConsentRecord).where(ConsentRecord.subject == A2)):
            assert record.event_hash == event_hash(to_event(record))
        assert aliases_of(session=session, subject=A2) == [A]
        assert verify_chain(session=session).ok
    assert _read(engine, ring, B, TAGS) != {}


def test_rekey_when_applied_then_alias_entry_commits_to_old_pseudonym(
    engine: Engine, edge: Principal, ring: MasterKeyRing
) -> None:
    _populate(engine, edge, ring, A)

    _rekey(engine, edge, ring, {A: A2})

    with Session(engine) as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.action == "subject.alias")).all()
        summary = session.exec(select(AuditEntry).where(AuditEntry.action == "tenant.rekey")).one()
    assert [e.subject_ref for e in entries] == [A2]
    detail = json.loads(entries[0].detail_json)
    assert detail["previous_commitment"] == subject_commitment(detail["previous_salt"], A)
    assert A not in entries[0].detail_json and A2 not in summary.detail_json
    assert json.loads(summary.detail_json)["applied"] == 1


def test_rekey_when_sent_again_then_already_applied_and_nothing_changes(
    engine: Engine, edge: Principal, ring: MasterKeyRing
) -> None:
    _populate(engine, edge, ring, A)
    _rekey(engine, edge, ring, {A: A2})
    fields = _read(engine, ring, A2, TAGS)

    again = _rekey(engine, edge, ring, {A: A2, B: B2})

    assert (again.applied, again.already_applied, again.unknown) == (0, 1, 1)
    assert _read(engine, ring, A2, TAGS) == fields
    with Session(engine) as session:
        assert verify_chain(session=session).ok


def test_rekey_when_new_pseudonym_held_by_another_subject_then_batch_refused(
    engine: Engine, edge: Principal, ring: MasterKeyRing
) -> None:
    for subject in (A, B, A3):
        _populate(engine, edge, ring, subject)

    with pytest.raises(ConflictError) as caught:
        _rekey(engine, edge, ring, {A: A2, B: A3})

    assert "1 pair(s) conflict" in str(caught.value)
    assert _read(engine, ring, A, TAGS) != {}  # nothing was applied, A2 included
    with pytest.raises(NotFoundError):
        _read(engine, ring, A2, TAGS)


def test_rekey_when_old_was_mapped_to_another_pseudonym_then_refused(
    engine: Engine, edge: Principal, ring: MasterKeyRing
) -> None:
    _populate(engine, edge, ring, A)
    _rekey(engine, edge, ring, {A: A2})

    with pytest.raises(ConflictError):
        _rekey(engine, edge, ring, {A: A3}, to_kid=KID3)


def test_rekey_when_edge_skipped_a_generation_then_its_direct_pair_counts_as_applied(
    engine: Engine, edge: Principal, ring: MasterKeyRing
) -> None:
    _populate(engine, edge, ring, A)
    _rekey(engine, edge, ring, {A: A2})
    _rekey(engine, edge, ring, {A2: A3}, from_kid=KID2, to_kid=KID3)

    late = _rekey(engine, edge, ring, {A: A3}, from_kid=KID1, to_kid=KID3)

    assert late.already_applied == 1
    with Session(engine) as session:
        assert aliases_of(session=session, subject=A3) == sorted([A, A2])
    assert _read(engine, ring, A3, "risk_control") == {RISK: "very_high"}


def test_rekey_when_old_pseudonym_was_erased_then_tombstone_covers_new(
    engine: Engine, edge: Principal, ring: MasterKeyRing
) -> None:
    _populate(engine, edge, ring, A)
    with Session(engine) as session:
        receipt = erase_subject(session=session, subject=A, at=T0)
        write_tombstone(session=session, subject=A, receipt_id=receipt.receipt_id, at=T0)
        session.commit()

    result = _rekey(engine, edge, ring, {A: A2})

    assert (result.unknown, result.tombstoned) == (1, 1)
    with Session(engine) as session:
        assert set(tombstones_of(session=session, subjects=[A2])) == {A2}
        assert session.exec(select(SubjectAlias)).all() == []


def test_rekey_when_withdrawn_consent_then_withdrawal_follows(
    engine: Engine, edge: Principal, ring: MasterKeyRing
) -> None:
    _populate(engine, edge, ring, A)
    with Session(engine, expire_on_commit=False) as session:
        withdrawal = make_consent_event(A, Purpose.MARKETING, status=ConsentStatus.WITHDRAWN)
        record_consents(
            session=session,
            events=[withdrawal],
            principal=edge,
            catalogue=CATALOGUE,
            audit=DatabaseAuditSink(session),
            at=T0,
        )

    _rekey(engine, edge, ring, {A: A2})

    with Session(engine) as session:
        state = consent_states(session=session, subjects=[A2])[A2]
    assert not state.is_granted(Purpose.MARKETING, T0)
    assert state.is_granted(Purpose.PERSONALIZED_SERVICE, T0)


@pytest.mark.parametrize(
    "pairs",
    [
        [(A, A2), (A, A3)],  # the same old twice
        [(A, A2), (B, A2)],  # the same new twice
        [(A, A2), (A2, A3)],  # a chain inside one batch
    ],
)
def test_batch_when_pairs_not_distinct_then_validation_error(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(ValidationError):
        RekeyBatch(from_kid=KID1, to_kid=KID2, pairs=[RekeyPair(old=o, new=n) for o, n in pairs])


def test_pseudonym_columns_cover_subject_tables_but_never_the_audit_log() -> None:
    names = {f"{c.table.name}.{c.name}" for c in pseudonym_columns()}

    assert {
        "profile_field.subject",
        "consent_record.subject",
        "subject_key.subject",
        "data_subject_request.subject",
        "subject_alias.subject",
    } <= names
    assert not any(n.startswith(("audit_", "subject.")) for n in names)
    assert "subject_tombstone.subject_hash" not in names


def test_rekey_when_subject_restricted_and_field_suppressed_then_both_follow(
    engine: Engine, edge: Principal, ring: MasterKeyRing
) -> None:
    _populate(engine, edge, ring, A)
    with Session(engine) as session:
        session.add(SubjectRestriction(subject=A, restricted_at=T0))
        session.add(FieldSuppression(subject=A, field=RISK, reason="rectified", suppressed_at=T0))
        session.commit()

    result = _rekey(engine, edge, ring, {A: A2})

    assert result.rows_renamed["subject_restriction"] == 1
    assert result.rows_renamed["field_suppression"] == 1
    with Session(engine) as session:
        assert session.get(SubjectRestriction, A2) is not None
        assert session.get(SubjectRestriction, A) is None
        [suppressed] = session.exec(select(FieldSuppression)).all()
    assert (suppressed.subject, suppressed.field) == (A2, RISK)


def test_unlink_alias_audit_refs_when_erasing_then_old_pseudonym_leaves_the_audit_log(
    engine: Engine, edge: Principal, ring: MasterKeyRing
) -> None:
    _populate(engine, edge, ring, A)
    _rekey(engine, edge, ring, {A: A2})

    with Session(engine) as session:
        unlinked = unlink_alias_audit_refs(session=session, subject=A2)
        erase_subject(session=session, subject=A2, at=T0)
        session.commit()

    assert unlinked > 0
    assert _holders(engine, A) == set() and _holders(engine, A2) == set()
    with Session(engine) as session:
        assert verify_chain(session=session).ok
