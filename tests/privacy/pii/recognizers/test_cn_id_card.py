import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("身份证号11010519900307451X", ["11010519900307451X"]),
        ("证件号码：11010519900307451x。", ["11010519900307451x"]),
        ("11010519491231002X是我的", ["11010519491231002X"]),
        ("身份证 110105 19900307 451X", ["110105 19900307 451X"]),
        # negative rows
        ("身份证110105199003074510", []),  # bad check digit
        ("身份证11010519900230451X", []),  # 30 February
        ("单号11010519900307451X9", []),  # glued to more digits
        ("订单号20230101123456789012", []),
        ("ABC11010519900307451X", []),  # glued to letters
    ],
)
def test_cn_id_card_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "CN_ID_CARD") == expected


def test_cn_id_card_when_also_luhn_valid_then_id_wins(detector) -> None:
    # an 18-digit number that is a valid ID *and* passes Luhn is masked as CN_ID_CARD
    from privacy.pii.recognizers.checksums import id_card_check_char, luhn_valid

    for serial in range(1000):
        body = f"440305198807{serial % 28 + 1:02d}{serial:03d}"
        value = body + id_card_check_char(body)
        if value[-1] != "X" and luhn_valid(value):
            break
    else:  # pragma: no cover - the search space holds many such numbers
        pytest.fail("no ID/Luhn collision found")
    entities = detector.analyze(f"卡号{value}", lang="zh")
    assert [(e.type, e.start, e.end) for e in entities] == [("CN_ID_CARD", 2, 20)]
