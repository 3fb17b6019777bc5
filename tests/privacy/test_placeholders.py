"""Placeholder identifiers are refused before any pseudonym exists; real ones pass."""

from __future__ import annotations

import pytest
from faker import Faker

from privacy import IdentifierError, IdentifierKind, normalize_identifier

K = IdentifierKind


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        (K.PHONE, "11111111111", "one digit repeated"),
        (K.PHONE, "+86 188 8888 8888", None),  # a real "lucky" number: only a hub if shared
        (K.PHONE, "00000000000", "one digit repeated"),
        (K.PHONE, "12345678901", "consecutive digits"),
        (K.PHONE, "98765432109", "consecutive digits"),
        (K.PHONE, "10086", "short or service number"),
        (K.PHONE, "95588", "short or service number"),
        (K.PHONE, "400-812-3123", "shared-cost (400)"),
        (K.PHONE, "800-810-8888", "toll-free"),
        (K.EMAIL, "test@test.com", "placeholder e-mail"),
        (K.EMAIL, "NoReply@163.com", "placeholder e-mail"),
        (K.EMAIL, "aaaa@qq.com", "placeholder e-mail"),
        (K.EMAIL, "li.lei@shop.invalid", "delivers to nobody"),
        (K.EMAIL, "li.lei@localhost", None),  # not an address at all: refused as malformed
        (K.ID_NUMBER, "111111111111111111", "one digit repeated"),
        (K.ID_NUMBER, "00000000000000000X", "one digit repeated"),
        (K.ACCOUNT_ID, "guest", "placeholder account id"),
        (K.ACCOUNT_ID, "NULL", "placeholder account id"),
        (K.ACCOUNT_ID, "-1", "placeholder account id"),
        (K.ACCOUNT_ID, "游客", "placeholder account id"),
        (K.ACCOUNT_ID, "000000", "placeholder account id"),
    ],
)
def test_placeholders_are_refused_with_a_reason_and_without_the_value(
    kind: IdentifierKind, value: str, reason: str | None
) -> None:
    if reason is None and kind is K.PHONE:
        assert normalize_identifier(kind, value)  # accepted
        return
    with pytest.raises(IdentifierError) as caught:
        normalize_identifier(kind, value)
    if reason is not None:
        assert reason in str(caught.value)
    assert value.lower() not in str(caught.value).lower()


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (K.PHONE, "13812345678"),
        (K.PHONE, "13800138000"),
        (K.PHONE, "010-12345678"),
        (K.EMAIL, "li.lei@example.com"),
        (K.EMAIL, "a@163.com"),
        (K.ID_NUMBER, "11010519491231002x"),
        (K.ACCOUNT_ID, "u_829301"),
        (K.ACCOUNT_ID, "a"),
    ],
)
def test_ordinary_identifiers_pass(kind: IdentifierKind, value: str) -> None:
    assert normalize_identifier(kind, value)


def test_no_generated_identifier_is_taken_for_a_placeholder() -> None:
    # The synthetic population's identifiers (Faker zh_CN) are ordinary ones.
    fake = Faker("zh_CN")
    fake.seed_instance(11)
    for _ in range(3000):
        normalize_identifier(K.PHONE, fake.phone_number())
        normalize_identifier(K.EMAIL, fake.email())
        normalize_identifier(K.ID_NUMBER, fake.ssn())
