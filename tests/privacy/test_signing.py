from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privacy import (
    DecryptionError,
    KeyFileError,
    SigningKey,
    VerifyKey,
    canonical_json,
    create_signing_key_file,
    load_or_create_signing_key_file,
    load_signing_key_file,
    verify_signed,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


def test_canonical_json_is_independent_of_key_order_and_keeps_chinese() -> None:
    a = canonical_json({"b": 1, "a": "同意"})
    b = canonical_json({"a": "同意", "b": 1})

    assert a == b == '{"a":"同意","b":1}'.encode()


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


@given(json_values)
def test_signed_documents_verify_and_any_change_is_detected(document: object) -> None:
    key = SigningKey.generate()
    envelope = key.signed({"payload": document})

    verify_signed(envelope, trusted=key.verify_key)
    tampered = {**envelope, "document": {"payload": document, "extra": 1}}
    with pytest.raises(DecryptionError):
        verify_signed(tampered, trusted=key.verify_key)


def test_verify_with_another_trusted_key_fails_opaquely() -> None:
    envelope = SigningKey.generate().signed({"a": 1})

    with pytest.raises(DecryptionError) as info:
        verify_signed(envelope, trusted=SigningKey.generate().verify_key)

    assert str(info.value) == "signature does not verify"


@pytest.mark.parametrize("broken", [{}, {"document": {}}, {"signature": "!!", "public_key": "x"}])
def test_malformed_envelopes_fail_opaquely(broken: dict[str, object]) -> None:
    with pytest.raises(DecryptionError):
        verify_signed(broken)


def test_verify_key_text_round_trip_and_id_is_stable() -> None:
    key = SigningKey.generate().verify_key

    again = VerifyKey.from_text(key.to_text())

    assert again == key and again.key_id == key.key_id and len(key.key_id) == 16


def test_key_file_is_owner_only_reloads_and_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"

    key = create_signing_key_file(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key_file(path).verify_key == key.verify_key
    assert load_or_create_signing_key_file(path).verify_key == key.verify_key
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        create_signing_key_file(path)
    assert "PRIVATE" not in repr(key)


def test_exposed_or_foreign_key_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    create_signing_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_signing_key_file(path)

    other = tmp_path / "other.pem"
    other.write_text("not a key")
    os.chmod(other, 0o600)
    with pytest.raises(KeyFileError, match="PEM"):
        load_signing_key_file(other)
