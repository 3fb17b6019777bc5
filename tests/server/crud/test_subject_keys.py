"""Per-subject data keys: created on first sensitive field, opened for reads, rotated, moved."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from consent import Purpose, load_default_catalogue
from privacy import DecryptionError
from privacy.keyring import MasterKeyRing
from server.crud.consent import record_consents
from server.crud.profile_store import fields_of, to_field_out
from server.crud.subject_keys import (
    SubjectKeys,
    destroy_subject_key,
    rebind_subject_key,
    subject_cipher,
)
from server.crud.upload import upload_profile
from server.principal import Principal
from server.tables.edge import Edge
from server.tables.profile_field import ProfileField
from server.tables.subject import Subject
from server.tables.subject_key import SubjectKey
from server.tables.token import Role

from ..factories import (
    T0,
    RecordingAuditSink,
    make_consent_event,
    make_field,
    make_pseudonym,
    make_upload,
)

CATALOGUE = load_default_catalogue()
EDGE = Principal(role=Role.EDGE, edge_id="edge-1", channel="app")
SUBJECT = make_pseudonym("keys-subject")
OTHER = make_pseudonym("keys-other")
RISK = "finance.payment_risk_level"


def _add_subjects(session: Session, *subjects: str) -> None:
    for subject in subjects:
        session.add(Subject(pseudonym=subject, first_seen_at=T0, last_seen_at=T0))
    session.commit()


def _create_keys(session: Session, ring: MasterKeyRing, *subjects: str) -> dict[str, bytes]:
    """Create keys for ``subjects``; return one probe ciphertext per subject."""
    keys = SubjectKeys(session=session, subjects=subjects, master_keys=ring)
    probes = {s: keys.cipher(s, at=T0).encrypt(field=RISK, plaintext=b'"low"') for s in subjects}
    keys.flush()
    session.commit()
    return probes


def _opens(session: Session, ring: MasterKeyRing, subject: str, probe: bytes) -> bool:
    cipher = subject_cipher(session=session, subject=subject, master_keys=ring)
    return cipher is not None and cipher.decrypt(field=RISK, ciphertext=probe) == b'"low"'


def test_subject_keys_create_once_and_reopen_same_key(db_session: Session) -> None:
    ring = MasterKeyRing.generate()
    _add_subjects(db_session, SUBJECT)

    probes = _create_keys(db_session, ring, SUBJECT)
    again = SubjectKeys(session=db_session, subjects=[SUBJECT], master_keys=ring)
    cipher = again.cipher(SUBJECT, at=T0 + timedelta(days=1))
    again.flush()

    rows = db_session.exec(select(SubjectKey)).all()
    assert len(rows) == 1 and rows[0].master_kid == ring.primary.kid
    assert cipher.decrypt(field=RISK, ciphertext=probes[SUBJECT]) == b'"low"'
    assert rows[0].created_at == T0


def test_subject_cipher_none_without_key(db_session: Session) -> None:
    _add_subjects(db_session, SUBJECT)

    assert subject_cipher(session=db_session, subject=SUBJECT,
                          master_keys=MasterKeyRing.generate()) is None


def test_subject_cipher_other_ring_raises_opaque_error(db_session: Session) -> None:
    _add_subjects(db_session, SUBJECT)
    _create_keys(db_session, MasterKeyRing.generate(), SUBJECT)

    with pytest.raises(DecryptionError):
        subject_cipher(session=db_session, subject=SUBJECT, master_keys=MasterKeyRing.generate())


def test_swapped_wrapped_keys_do_not_open(db_session: Session) -> None:
    ring = MasterKeyRing.generate()
    _add_subjects(db_session, SUBJECT, OTHER)
    _create_keys(db_session, ring, SUBJECT, OTHER)
    mine = db_session.get(SubjectKey, SUBJECT)
    theirs = db_session.get(SubjectKey, OTHER)
    assert mine is not None and theirs is not None
    mine.wrapped_key, theirs.wrapped_key = theirs.wrapped_key, mine.wrapped_key
    db_session.commit()

    with pytest.raises(DecryptionError):
        subject_cipher(session=db_session, subject=SUBJECT, master_keys=ring)


def test_destroy_subject_key_returns_evidence_once(db_session: Session) -> None:
    ring = MasterKeyRing.generate()
    _add_subjects(db_session, SUBJECT)
    _create_keys(db_session, ring, SUBJECT)

    first = destroy_subject_key(session=db_session, subject=SUBJECT)
    second = destroy_subject_key(session=db_session, subject=SUBJECT)

    assert first is not None and first.master_kid == ring.primary.kid
    assert len(first.wrapped_key_sha256) == 64 and first.key_version == 1
    assert second is None
    assert subject_cipher(session=db_session, subject=SUBJECT, master_keys=ring) is None


def test_rebind_subject_key_moves_key_to_new_pseudonym(db_session: Session) -> None:
    ring = MasterKeyRing.generate()
    new = make_pseudonym("keys-rekeyed")
    _add_subjects(db_session, SUBJECT, new)
    probe = _create_keys(db_session, ring, SUBJECT)[SUBJECT]

    ciphers = rebind_subject_key(session=db_session, old=SUBJECT, new=new, master_keys=ring)
    db_session.commit()

    assert ciphers is not None
    old_cipher, new_cipher = ciphers
    resealed = new_cipher.encrypt(field=RISK, plaintext=old_cipher.decrypt(field=RISK,
                                                                           ciphertext=probe))
    assert db_session.get(SubjectKey, SUBJECT) is None
    assert _opens(db_session, ring, new, resealed)
    assert rebind_subject_key(session=db_session, old=SUBJECT, new=new, master_keys=ring) is None


def _seed_sensitive_consent(session: Session) -> None:
    session.add(Edge(id="edge-1", name="app-1", channel="app", created_at=T0))
    session.commit()
    events = [make_consent_event(SUBJECT, Purpose.RISK_CONTROL, separate=True),
              make_consent_event(SUBJECT)]
    record_consents(session=session, events=events, principal=EDGE, catalogue=CATALOGUE,
                    audit=RecordingAuditSink(), at=T0)


def _upload_risk(session: Session, ring: MasterKeyRing | None, value: str = "very_high") -> None:
    upload_profile(
        session=session, subject=SUBJECT,
        upload=make_upload("risk_control", [make_field(RISK, value)]), principal=EDGE,
        idempotency_key=f"k-{value}", catalogue=CATALOGUE, audit=RecordingAuditSink(), at=T0,
        master_keys=ring,
    )


def test_upload_seals_sensitive_field_and_read_opens_it(db_session: Session) -> None:
    _seed_sensitive_consent(db_session)
    ring = MasterKeyRing.generate()

    _upload_risk(db_session, ring)
    upload_profile(session=db_session, subject=SUBJECT, upload=make_upload(), principal=EDGE,
                   idempotency_key="k-normal", catalogue=CATALOGUE, audit=RecordingAuditSink(),
                   at=T0, master_keys=ring)

    rows = {r.name: r for r in fields_of(session=db_session, subject=SUBJECT)}
    sealed, plain = rows[RISK], rows["tag.high_purchasing_power"]
    assert sealed.value_json is None and sealed.value_ciphertext is not None
    assert sealed.key_version == 1 and b"very_high" not in sealed.value_ciphertext
    assert plain.value_json == "true" and plain.value_ciphertext is None
    cipher = subject_cipher(session=db_session, subject=SUBJECT, master_keys=ring)
    out = to_field_out(sealed, cipher=cipher)
    assert out.value == "very_high" and out.confidence == 0.8
    assert to_field_out(plain).value is True


def test_upload_replaces_sealed_value_under_same_key(db_session: Session) -> None:
    _seed_sensitive_consent(db_session)
    ring = MasterKeyRing.generate()
    _upload_risk(db_session, ring, "very_high")

    _upload_risk(db_session, ring, "medium")

    (row,) = [r for r in fields_of(session=db_session, subject=SUBJECT) if r.name == RISK]
    cipher = subject_cipher(session=db_session, subject=SUBJECT, master_keys=ring)
    assert to_field_out(row, cipher=cipher).value == "medium"
    assert len(db_session.exec(select(SubjectKey)).all()) == 1


def test_upload_sensitive_without_master_keys_stores_nothing(db_session: Session) -> None:
    _seed_sensitive_consent(db_session)

    with pytest.raises(ValueError, match="master_keys"):
        _upload_risk(db_session, None)
    db_session.rollback()

    assert db_session.exec(select(ProfileField)).all() == []
    assert db_session.exec(select(SubjectKey)).all() == []


@pytest.mark.parametrize("case", ["no-cipher", "other-subject", "moved-row"])
def test_to_field_out_sealed_row_refuses_wrong_cipher(db_session: Session, case: str) -> None:
    _seed_sensitive_consent(db_session)
    ring = MasterKeyRing.generate()
    _upload_risk(db_session, ring)
    (row,) = [r for r in fields_of(session=db_session, subject=SUBJECT) if r.name == RISK]
    cipher = subject_cipher(session=db_session, subject=SUBJECT, master_keys=ring)
    if case == "no-cipher":
        cipher = None
    elif case == "other-subject":
        _add_subjects(db_session, OTHER)
        _create_keys(db_session, ring, OTHER)
        cipher = subject_cipher(session=db_session, subject=OTHER, master_keys=ring)
    else:
        row.name = "tag.high_purchasing_power"

    with pytest.raises(DecryptionError) as info:
        to_field_out(row, cipher=cipher)

    assert "very_high" not in str(info.value) and json.dumps("very_high") not in repr(info.value)
