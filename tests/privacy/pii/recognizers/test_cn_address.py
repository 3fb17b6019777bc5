import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "住在北京市朝阳区建国路88号院3号楼2单元501室。",
            ["北京市朝阳区建国路88号院3号楼2单元501室"],
        ),
        ("寄到广东省深圳市南山区科技园路1号", ["广东省深圳市南山区科技园路1号"]),
        ("收货地址：上海市浦东新区张江路500弄3号", ["上海市浦东新区张江路500弄3号"]),
        ("地址是杭州市西湖区", ["杭州市西湖区"]),
        ("送到内蒙古自治区呼和浩特市新城区B座吧", ["内蒙古自治区呼和浩特市新城区B座"]),
        # negative rows
        ("我在北京出差", []),  # a lone city is not an address
        ("新能源车京AD12345", []),
        ("市场部的同事说明天发货", []),
        ("上海发货的吗", []),
    ],
)
def test_cn_address_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "CN_ADDRESS") == expected
