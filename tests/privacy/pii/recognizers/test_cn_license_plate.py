import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的车牌是粤B12345", ["粤B12345"]),
        ("新能源车京AD12345。", ["京AD12345"]),
        ("车牌沪A·12345D", ["沪A·12345D"]),
        ("赣D-24339违章了吗", ["赣D-24339"]),
        ("教练车苏A1234学", ["苏A1234学"]),
        # negative rows
        ("粤B1234", []),  # too short
        ("粤B1234567", []),  # too long
        ("美A12345", []),  # not a province
    ],
)
def test_cn_license_plate_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "CN_LICENSE_PLATE") == expected
