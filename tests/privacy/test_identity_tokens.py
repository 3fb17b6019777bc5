"""Keyed identity tokens: deterministic per key, per kind, never equal to pseudonyms."""

from __future__ import annotations

import pytest

from privacy import (
    IDENTITY_TOKEN_PREFIX,
    IdentifierError,
    IdentifierKind,
    IdentityTokenizer,
    Pseudonymizer,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_token_is_deterministic_across_formats_and_keyed() -> None:
    tokens = IdentityTokenizer(KEY)
    a = tokens.token(IdentifierKind.PHONE, "138 1234 5678")
    assert a == tokens.token(IdentifierKind.PHONE, "+86 138-1234-5678")
    assert a.startswith(IDENTITY_TOKEN_PREFIX) and len(a) == 67
    assert a != IdentityTokenizer(OTHER_KEY).token(IdentifierKind.PHONE, "13812345678")
    # Not the pseudonym of the same identifier: a token reveals no pseudonym.
    assert a[3:] != Pseudonymizer(KEY).pseudonym(IdentifierKind.PHONE, "13812345678")[3:]
    assert Pseudonymizer(KEY).tokenizer().token(IdentifierKind.PHONE, "13812345678") == a


def test_kinds_are_domain_separated() -> None:
    tokens = IdentityTokenizer(KEY)
    assert tokens.token(IdentifierKind.MEMBER_CARD, "88881234") != tokens.token(
        IdentifierKind.ACCOUNT_ID, "88881234"
    )


@pytest.mark.parametrize(
    ("kind", "raw", "canonical_twin"),
    [
        (IdentifierKind.DEVICE_ID, "A1B2-C3D4:E5F6-A7B8", "a1b2c3d4e5f6a7b8"),
        (IdentifierKind.MEMBER_CARD, "vip 2024-889", "VIP2024889"),
        (
            IdentifierKind.WECHAT_OPENID,
            " oUpF8uMuAJO_M2pxb1Q9zNjWeS6o ",
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        ),
    ],
)
def test_new_identifier_kinds_normalise(
    kind: IdentifierKind, raw: str, canonical_twin: str
) -> None:
    tokens = IdentityTokenizer(KEY)
    assert tokens.token(kind, raw) == tokens.token(kind, canonical_twin)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (IdentifierKind.DEVICE_ID, "00000000-0000-0000-0000-000000000000"),
        (IdentifierKind.DEVICE_ID, "undefined"),
        (IdentifierKind.MEMBER_CARD, "12345678"),
        (IdentifierKind.WECHAT_UNIONID, "x" * 28),
        (IdentifierKind.MEMBER_CARD, "卡号"),
    ],
)
def test_placeholders_and_malformed_values_are_refused_without_echo(
    kind: IdentifierKind, value: str
) -> None:
    with pytest.raises(IdentifierError) as info:
        IdentityTokenizer(KEY).token(kind, value)
    assert value not in str(info.value)
    assert kind.value in str(info.value)


def test_repr_hides_the_key() -> None:
    assert KEY.hex() not in repr(IdentityTokenizer(KEY)) and "hidden" in repr(
        IdentityTokenizer(KEY)
    )
