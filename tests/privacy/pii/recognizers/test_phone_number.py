import pytest

from tests.privacy.pii.conftest import SpansOf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me at 212-555-0199", ["212-555-0199"]),
        ("my phone number is (415)555-2671 ok", ["(415)555-2671"]),
        ("reach me on 206.269.0743x9150.", ["206.269.0743x9150"]),
        ("new number: +1-654-475-4627", ["+1-654-475-4627"]),  # unassigned area code
        ("dial 001-741-902-1958x7134 now", ["001-741-902-1958x7134"]),
        ("my mobile is 4155552671", ["4155552671"]),
        ("+44 20 7946 0958 is the London office", ["+44 20 7946 0958"]),
        # negative rows
        ("order #1234567890 was late", []),
        ("logged in from 138.4.211.203", []),  # an IPv4 address, not a number
        ("I was charged $129.99 on 2024-03-05", []),
        ("invoice 4155552671", []),
    ],
)
def test_en_phone_table(en_spans: SpansOf, text: str, expected: list[str]) -> None:
    assert en_spans(text, "PHONE_NUMBER") == expected
