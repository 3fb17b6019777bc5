import pytest

from privacy.pii.recognizers.base import is_hanzi, window


@pytest.mark.parametrize(
    ("text", "expected"),
    [("张伟", True), ("㐀", True), ("张3", False), ("", False), ("ab", False), ("，", False)],
)
def test_is_hanzi_table(text: str, expected: bool) -> None:
    assert is_hanzi(text) is expected


def test_window_returns_lowercased_sides_clipped_to_text() -> None:
    assert window("Tel:13812345678元", 4, 15, before=10, after=3) == ("tel:", "元")
