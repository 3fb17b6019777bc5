import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("护照号E12345678", ["E12345678"]),
        ("我的护照是G87654321。", ["G87654321"]),
        ("护照：EA1234567", ["EA1234567"]),
        # negative rows: no context keeps the score under the threshold
        ("型号E12345678", []),
        ("护照号E1234567", []),  # 7 digits
        ("护照号EI1234567", []),  # I is never used
    ],
)
def test_cn_passport_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "CN_PASSPORT") == expected
