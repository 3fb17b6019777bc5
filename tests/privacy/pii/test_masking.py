from dataclasses import dataclass

import pytest

from privacy.pii.masking import mask_text, placeholder, resolve_overlaps


@dataclass(frozen=True)
class Span:
    type: str
    start: int
    end: int
    score: float


@pytest.mark.parametrize(
    ("spans", "kept"),
    [
        # disjoint spans are all kept, in text order
        ([Span("A", 5, 8, 0.5), Span("B", 0, 3, 0.9)], [("B", 0, 3), ("A", 5, 8)]),
        # highest score wins
        ([Span("PERSON", 0, 4, 0.5), Span("CN_ADDRESS", 2, 9, 0.85)], [("CN_ADDRESS", 2, 9)]),
        # equal scores: the longer span wins
        ([Span("A", 0, 4, 0.6), Span("B", 0, 6, 0.6)], [("B", 0, 6)]),
        # equal score and length: ID beats bank card
        (
            [Span("CN_BANK_CARD", 2, 20, 1.0), Span("CN_ID_CARD", 2, 20, 1.0)],
            [("CN_ID_CARD", 2, 20)],
        ),
        # a loser is dropped even if it overlaps only partly
        (
            [Span("A", 0, 5, 0.9), Span("B", 4, 10, 0.8), Span("C", 10, 12, 0.1)],
            [("A", 0, 5), ("C", 10, 12)],
        ),
        # empty spans are ignored
        ([Span("A", 3, 3, 1.0)], []),
    ],
)
def test_resolve_overlaps_table(spans: list[Span], kept: list[tuple[str, int, int]]) -> None:
    assert [(s.type, s.start, s.end) for s in resolve_overlaps(spans)] == kept


def test_mask_text_replaces_each_span_with_its_placeholder() -> None:
    text = "我是张伟，手机13812345678。"
    spans = [Span("CN_MOBILE", 7, 18, 0.95), Span("PERSON", 2, 4, 0.6)]

    assert mask_text(text, spans) == "我是<PERSON>，手机<CN_MOBILE>。"


@pytest.mark.parametrize(
    "spans",
    [[Span("A", 0, 3, 1.0), Span("B", 2, 4, 1.0)], [Span("A", 0, 30, 1.0)], [Span("A", 3, 1, 1.0)]],
)
def test_mask_text_when_spans_invalid_then_value_error(spans: list[Span]) -> None:
    with pytest.raises(ValueError, match="non-overlapping"):
        mask_text("0123456789", spans)


def test_placeholder_wraps_type() -> None:
    assert placeholder("CN_ID_CARD") == "<CN_ID_CARD>"
