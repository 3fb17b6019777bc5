from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privacy import (
    IdentifierError,
    IdentifierKind,
    KeyFileError,
    Pseudonymizer,
    create_key_file,
    load_key_file,
    normalize_identifier,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


@pytest.mark.parametrize(
    ("kind", "raw", "canonical"),
    [
        (IdentifierKind.PHONE, "13812345678", "+8613812345678"),
        (IdentifierKind.PHONE, "+86 138-1234-5678", "+8613812345678"),
        (IdentifierKind.PHONE, "0086 138 1234 5678", "+8613812345678"),
        (IdentifierKind.EMAIL, " Wang.Wei@Example.COM ", "wang.wei@example.com"),
        (IdentifierKind.ID_NUMBER, "11010519900307451x", "11010519900307451X"),
        (IdentifierKind.ACCOUNT_ID, " acct-42 ", "acct-42"),
    ],
)
def test_normalize_identifier_canonical_forms(
    kind: IdentifierKind, raw: str, canonical: str
) -> None:
    assert normalize_identifier(kind, raw) == canonical


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (IdentifierKind.PHONE, "not-a-number"),
        (IdentifierKind.PHONE, "12"),
        (IdentifierKind.PHONE, "1381234ab"),
        (IdentifierKind.PHONE, "138-1234-5678 ext"),
        (IdentifierKind.EMAIL, "wang.wei@"),
        (IdentifierKind.ID_NUMBER, "1101051990030745"),
        (IdentifierKind.ACCOUNT_ID, "has space"),
    ],
)
def test_normalize_identifier_rejects_without_echoing_value(kind: IdentifierKind, raw: str) -> None:
    with pytest.raises(IdentifierError) as info:
        normalize_identifier(kind, raw)

    assert raw not in str(info.value)


def test_pseudonym_same_person_different_formats_same_pseudonym() -> None:
    p = Pseudonymizer(KEY_A)

    assert p.pseudonym(IdentifierKind.PHONE, "13812345678") == p.pseudonym(
        IdentifierKind.PHONE, "+86 138 1234 5678"
    )


def test_pseudonym_kind_is_part_of_input() -> None:
    p = Pseudonymizer(KEY_A)

    assert p.pseudonym(IdentifierKind.ACCOUNT_ID, "13812345678") != p.pseudonym(
        IdentifierKind.PHONE, "13812345678"
    )


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_pseudonym_deterministic_under_one_key_unlinkable_across_keys(phone: str) -> None:
    a1 = Pseudonymizer(KEY_A).pseudonym(IdentifierKind.PHONE, phone)
    a2 = Pseudonymizer(KEY_A).pseudonym(IdentifierKind.PHONE, phone)
    b = Pseudonymizer(KEY_B).pseudonym(IdentifierKind.PHONE, phone)

    assert a1 == a2
    assert a1 != b
    assert a1.startswith("ps_") and len(a1) == 67
    assert phone not in a1


def test_pseudonymizer_rejects_short_key_and_hides_key_in_repr() -> None:
    with pytest.raises(ValueError, match="key"):
        Pseudonymizer(b"short")
    assert KEY_A.hex() not in repr(Pseudonymizer(KEY_A))


def test_key_file_created_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "tenant.key"

    key = create_key_file(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_file(path) == key
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        create_key_file(path)


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tenant.key"
    create_key_file(path)
    os.chmod(path, 0o644)

    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key_file(path)


def test_key_file_malformed_is_refused_without_content(tmp_path: Path) -> None:
    path = tmp_path / "tenant.key"
    path.write_text("zz-not-hex\n")
    os.chmod(path, 0o600)

    with pytest.raises(KeyFileError) as info:
        load_key_file(path)

    assert "zz-not-hex" not in str(info.value)
