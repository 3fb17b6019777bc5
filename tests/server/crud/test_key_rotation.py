"""Master-key rotation: every data key re-wrapped, old keys retired, ciphertexts still open."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from privacy import DecryptionError
from privacy.keyring import MasterKey, MasterKeyRing
from privacy.master_keys import create_master_key_file, load_master_key_file
from server.crud.key_rotation import count_keys_not_under, rewrap_subject_keys, rotate_master_key
from server.crud.subject_keys import SubjectKeys, subject_cipher
from server.tables.subject import Subject

from ..factories import T0, make_pseudonym

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


def test_rewrap_moves_keys_to_primary_and_counts_unreadable(db_session: Session) -> None:
    old, new, lost = MasterKey.generate(), MasterKey.generate(), MasterKey.generate()
    third = make_pseudonym("keys-third")
    _add_subjects(db_session, SUBJECT, OTHER, third)
    probes = _create_keys(db_session, MasterKeyRing([old]), SUBJECT, OTHER)
    _create_keys(db_session, MasterKeyRing([lost]), third)
    ring = MasterKeyRing([new, old])

    report = rewrap_subject_keys(session=db_session, master_keys=ring, at=T0)
    db_session.commit()

    assert (report.rewrapped, report.unreadable) == (2, 1)
    assert count_keys_not_under(session=db_session, kid=new.kid) == 1
    only_new = MasterKeyRing([new])
    assert all(_opens(db_session, only_new, s, p) for s, p in probes.items())


def test_rotate_master_key_rewraps_everything_and_retires_old_key(
    db_session: Session, tmp_path: Path
) -> None:
    key_file = tmp_path / "master.key"
    old = create_master_key_file(key_file)
    _add_subjects(db_session, SUBJECT, OTHER)
    probes = _create_keys(db_session, old, SUBJECT, OTHER)

    rotation = rotate_master_key(session=db_session, key_file=key_file, at=T0)

    ring = load_master_key_file(key_file)
    assert ring.kids == (rotation.primary_kid,)
    assert rotation.retired_kids == old.kids and rotation.rewrapped == 2
    assert count_keys_not_under(session=db_session, kid=rotation.primary_kid) == 0
    assert all(_opens(db_session, ring, s, p) for s, p in probes.items())
    with pytest.raises(DecryptionError):
        subject_cipher(session=db_session, subject=SUBJECT, master_keys=old)

