import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("座机010-62345678", ["010-62345678"]),
        ("办公室(0755)88886666", ["(0755)88886666"]),
        ("打0755 8888 6666", ["0755 8888 6666"]),
        ("电话021-6234567-801转不通", ["021-6234567-801"]),
        ("固话01062345678", ["01062345678"]),  # bare run needs a context word
        # negative rows
        ("编号01062345678", []),  # bare run without context
        ("价格010-62345678元", []),
        ("010-1234567", []),  # local numbers do not start with 1
        ("2024-03-05", []),
    ],
)
def test_cn_landline_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "CN_LANDLINE") == expected
