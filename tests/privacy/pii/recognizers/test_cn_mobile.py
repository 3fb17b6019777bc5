import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的手机号13812345678", ["13812345678"]),
        ("手机号是：+86 139-1234-5678。", ["+86 139-1234-5678"]),
        ("电话0086 15912345678", ["0086 15912345678"]),
        ("(+86)18612345678", ["(+86)18612345678"]),
        ("请回拨138 1234 5678谢谢", ["138 1234 5678"]),
        ("13812345678是我的号码", ["13812345678"]),
        ("两个号码13812345678和19987654321", ["13812345678", "19987654321"]),
        ("手机１３８１２３４５６７８", ["１３８１２３４５６７８"]),  # full-width digits
        # negative rows
        ("号码12812345678", []),  # 12x is not a mobile prefix
        ("号码1381234567", []),  # 10 digits
        ("订单号20230101123456789012", []),  # 20-digit order number
        ("流水号138123456789", []),  # 12 digits
        ("金额13812345678元", []),  # amount, not a number to call
        ("订单号：13812345678", []),
        ("单号13812345678，手机在身边", ["13812345678"]),  # positive context wins
    ],
)
def test_cn_mobile_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "CN_MOBILE") == expected


def test_cn_mobile_context_raises_score(detector) -> None:
    plain = detector.analyze("13812345678", lang="zh")
    cued = detector.analyze("手机号13812345678", lang="zh")
    assert plain[0].score == pytest.approx(0.6)
    assert cued[0].score > plain[0].score
