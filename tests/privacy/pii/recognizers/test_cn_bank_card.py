import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("银行卡6222021234567890128", ["6222021234567890128"]),
        ("卡号 6222 0212 3456 7890 128", ["6222 0212 3456 7890 128"]),
        ("退款到4111111111111111", ["4111111111111111"]),
        ("5555-5555-5555-4444谢谢", ["5555-5555-5555-4444"]),
        ("卡号6222021234567890127", ["6222021234567890127"]),  # UnionPay, Luhn fails, context
        # negative rows
        ("6222021234567890127", []),  # UnionPay failing Luhn without context
        ("卡号4111111111111112", []),  # non-UnionPay failing Luhn
        ("订单号20230101123456789012", []),  # 20 digits
        ("订单号6222021234567890128", []),  # Luhn-valid by chance after an order cue
        ("卡号622202123456789", []),  # 15 digits
        ("7222021234567890128", []),  # no card starts with 7 here
    ],
)
def test_cn_bank_card_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "CN_BANK_CARD") == expected
