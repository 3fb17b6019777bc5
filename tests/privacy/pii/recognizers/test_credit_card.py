import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card number 4111 1111 1111 1111", ["4111 1111 1111 1111"]),
        ("paid with 2223000048400011", ["2223000048400011"]),  # Mastercard 2-series
        ("my visa is 4798828315265835410", ["4798828315265835410"]),  # 19 digits
        ("amex 378282246310005.", ["378282246310005"]),
        ("maestro 503876524078", ["503876524078"]),  # 12 digits, Luhn-valid
        # negative rows
        ("card number 4111 1111 1111 1112", []),  # Luhn fails
        ("order 1234567890", []),
        ("tracking 94001118992231234567", []),  # 20 digits
    ],
)
def test_en_credit_card_table(en_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert en_spans(text, "CREDIT_CARD") == expected
