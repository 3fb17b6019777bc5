import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("统一社会信用代码91110000600037341L", ["91110000600037341L"]),
        ("税号：91350100M000100Y43。", ["91350100M000100Y43"]),
        # negative rows
        ("税号91110000600037341M", []),  # wrong check character
        ("编码91110000600037341LX", []),  # glued to a letter
    ],
)
def test_cn_uscc_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "CN_USCC") == expected
