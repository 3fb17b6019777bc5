import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("登录IP 10.2.3.4。", ["10.2.3.4"]),
        ("IP地址192.168.1.20登录的", ["192.168.1.20"]),  # glued to Hanzi
        ("地址fe80::1ff:fe23:4567:890a异常", ["fe80::1ff:fe23:4567:890a"]),
        # negative rows
        ("版本1.2.3", []),
        ("999.1.1.1", []),
        ("1.2.3.4.5", []),
    ],
)
def test_zh_ip_table(zh_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert zh_spans(text, "IP_ADDRESS") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("logged in from 8.8.4.4 yesterday", ["8.8.4.4"]),
        ("version 10.2 was fine", []),
    ],
)
def test_en_ip_table(en_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert en_spans(text, "IP_ADDRESS") == expected
