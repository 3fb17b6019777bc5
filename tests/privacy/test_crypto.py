from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy import DecryptionError
from privacy.crypto import FieldCipher, decrypt_record, encrypt_record
from privacy.keyring import DataKey, MasterKey, MasterKeyRing

SUBJECT_A = "ps_" + "a" * 64
SUBJECT_B = "ps_" + "b" * 64
SECRET = bytes(range(32))


def test_encrypt_record_round_trips_and_hides_plaintext() -> None:
    key = DataKey.generate()

    sealed = encrypt_record(key=key, plaintext=b'{"value":"high"}', aad=b"row")

    assert b"high" not in sealed
    assert decrypt_record(key=key, ciphertext=sealed, aad=b"row") == b'{"value":"high"}'


@pytest.mark.parametrize(
    "case",
    ["other-key", "other-version", "other-aad", "unknown-format", "edited"],
)
def test_decrypt_record_any_mismatch_raises_opaque_error(case: str) -> None:
    key = DataKey(SECRET, version=1)
    sealed = bytearray(encrypt_record(key=key, plaintext=b"low", aad=b"row"))
    use_key, aad = key, b"row"
    if case == "other-key":
        use_key = DataKey.generate()
    elif case == "other-version":
        use_key = DataKey(SECRET, version=2)
    elif case == "other-aad":
        aad = b"other-row"
    elif case == "unknown-format":
        sealed[0] = 0x02
    else:
        sealed[-3] ^= 0x01

    with pytest.raises(DecryptionError) as info:
        decrypt_record(key=use_key, ciphertext=bytes(sealed), aad=aad)

    assert str(info.value) == ""


def test_field_cipher_binds_subject_and_field_name() -> None:
    key = DataKey.generate()
    cipher_a = FieldCipher(subject=SUBJECT_A, data_key=key)
    cipher_b = FieldCipher(subject=SUBJECT_B, data_key=key)

    sealed = cipher_a.encrypt(field="finance.payment_risk_level", plaintext=b'"low"')

    assert cipher_a.decrypt(field="finance.payment_risk_level", ciphertext=sealed) == b'"low"'
    with pytest.raises(DecryptionError):
        cipher_a.decrypt(field="tag.high_purchasing_power", ciphertext=sealed)
    with pytest.raises(DecryptionError):
        cipher_b.decrypt(field="finance.payment_risk_level", ciphertext=sealed)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MasterKeyRing([]), "at least one"),
        (lambda: MasterKeyRing([MasterKey(SECRET), MasterKey(SECRET)]), "twice"),
        (lambda: MasterKey(b"short"), "32 bytes"),
        (lambda: DataKey(b"short"), "32 bytes"),
        (lambda: DataKey(SECRET, version=0), "version"),
        (lambda: FieldCipher(subject="", data_key=DataKey(SECRET)), "subject"),
    ],
)
def test_constructors_reject_misuse(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_reprs_never_show_key_material() -> None:
    data_key = DataKey(SECRET)
    ring = MasterKeyRing([MasterKey(SECRET)])
    _, wrapped = ring.new_data_key(subject=SUBJECT_A)
    texts = [repr(data_key), repr(ring), repr(ring.primary), repr(wrapped),
             repr(FieldCipher(subject=SUBJECT_A, data_key=data_key))]

    for text in texts:
        assert SECRET.hex() not in text and str(SECRET) not in text
        assert wrapped.blob.hex() not in text and str(wrapped.blob) not in text


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=256), aad=st.binary(max_size=64))
def test_encrypt_record_round_trips_any_bytes(plaintext: bytes, aad: bytes) -> None:
    key = DataKey(SECRET)

    assert decrypt_record(key=key, ciphertext=encrypt_record(key=key, plaintext=plaintext,
                                                              aad=aad), aad=aad) == plaintext
