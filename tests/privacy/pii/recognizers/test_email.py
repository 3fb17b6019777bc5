import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("邮箱service@example.com.cn", ["service@example.com.cn"]),
        ("发到john.smith+cs@mail.example.org就行", ["john.smith+cs@mail.example.org"]),
        ("邮箱：Wang_Wei@163.com。", ["Wang_Wei@163.com"]),
        ("email：ａｂｃ＠ｅｘａｍｐｌｅ．ｃｏｍ", ["ａｂｃ＠ｅｘａｍｐｌｅ．ｃｏｍ"]),  # full-width
        # negative rows
        ("邮箱service@example", []),  # no public suffix
        ("价格@10元", []),
        ("用户名@小明", []),
        ("a@b.notarealtld", []),
    ],
)
def test_zh_email_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "EMAIL_ADDRESS") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to john.smith@example.com please", ["john.smith@example.com"]),
        ("my email: a.b-c@sub.example.co.uk.", ["a.b-c@sub.example.co.uk"]),
        ("ping @channel at noon", []),
        ("user@localhost", []),
    ],
)
def test_en_email_table(en_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert en_spans(text, "EMAIL_ADDRESS") == expected


def test_email_validation_never_fetches_the_suffix_list() -> None:
    from privacy.pii.recognizers.email import EmailAddressRecognizer

    recognizer = EmailAddressRecognizer(supported_language="zh")

    assert recognizer._extract.suffix_list_urls == ()
    assert recognizer.validate_result("a@example.com.cn") is True
