from __future__ import annotations

import dataclasses

import pytest

from privacy import DecryptionError
from privacy.crypto import FieldCipher
from privacy.keyring import DataKey, MasterKey, MasterKeyRing

SUBJECT_A = "ps_" + "a" * 64
SUBJECT_B = "ps_" + "b" * 64
SECRET = bytes(range(32))


def test_master_key_wrap_unwrap_round_trips_and_binds_subject() -> None:
    master = MasterKey(SECRET)
    data_key = DataKey.generate(version=3)
    probe = FieldCipher(subject=SUBJECT_A, data_key=data_key).encrypt(field="f", plaintext=b"v")

    wrapped = master.wrap(data_key, subject=SUBJECT_A)
    opened = master.unwrap(wrapped, subject=SUBJECT_A)

    assert wrapped.master_kid == master.kid and wrapped.version == 3
    assert FieldCipher(subject=SUBJECT_A, data_key=opened).decrypt(field="f", ciphertext=probe) \
        == b"v"
    with pytest.raises(DecryptionError):
        master.unwrap(wrapped, subject=SUBJECT_B)


@pytest.mark.parametrize(
    "edit",
    [
        {"version": 2},
        {"master_kid": "mk_0000000000000000"},
        {"version": 0},
    ],
)
def test_master_key_unwrap_edited_metadata_raises_opaque_error(edit: dict[str, object]) -> None:
    master = MasterKey(SECRET)
    wrapped = master.wrap(DataKey.generate(), subject=SUBJECT_A)
    edited = dataclasses.replace(wrapped, **edit)

    with pytest.raises(DecryptionError):
        master.unwrap(edited, subject=SUBJECT_A)


def test_master_key_kid_is_stable_and_reveals_no_key_bytes() -> None:
    assert MasterKey(SECRET).kid == MasterKey(SECRET).kid
    assert MasterKey(SECRET).kid != MasterKey(bytes(range(1, 33))).kid
    kid = MasterKey(SECRET).kid
    assert kid.startswith("mk_") and SECRET.hex()[:16] not in kid


def test_ring_rotate_rewraps_under_primary_and_keeps_data_key() -> None:
    old = MasterKey.generate()
    new = MasterKey.generate()
    data_key, wrapped = MasterKeyRing([old]).new_data_key(subject=SUBJECT_A)
    sealed = FieldCipher(subject=SUBJECT_A, data_key=data_key).encrypt(field="f", plaintext=b"v")
    ring = MasterKeyRing([new, old])

    rotated = ring.rotate(wrapped, subject=SUBJECT_A)

    assert ring.needs_rotation(wrapped) and not ring.needs_rotation(rotated)
    assert rotated.master_kid == new.kid
    assert ring.rotate(rotated, subject=SUBJECT_A) is rotated
    reopened = MasterKeyRing([new]).unwrap(rotated, subject=SUBJECT_A)
    assert FieldCipher(subject=SUBJECT_A, data_key=reopened).decrypt(field="f", ciphertext=sealed) \
        == b"v"


def test_ring_without_wrapping_key_raises_opaque_error() -> None:
    _, wrapped = MasterKeyRing.generate().new_data_key(subject=SUBJECT_A)

    with pytest.raises(DecryptionError):
        MasterKeyRing.generate().unwrap(wrapped, subject=SUBJECT_A)

