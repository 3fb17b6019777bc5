from __future__ import annotations

import pytest

from privacy import EncodedRecord, EncodingMismatchError
from server.identity.linkage import LinkDecision, link_encodings, run_linkage
from simulations.linkage_data import LinkageSet

from .conftest import encode_rows


def _f1(links: list, truth: set[tuple[str, str]]) -> tuple[float, float, float]:
    predicted = {(link.a_id, link.b_id) for link in links if link.decision is LinkDecision.MATCH}
    tp = len(predicted & truth)
    precision, recall = tp / len(predicted), tp / len(truth)
    return precision, recall, 2 * precision * recall / (precision + recall)


def test_chinese_set_links_with_high_f1(
    chinese_set: LinkageSet, chinese_encoded: tuple[list[EncodedRecord], list[EncodedRecord]]
) -> None:
    links = link_encodings(*chinese_encoded)

    precision, recall, f1 = _f1(links, chinese_set.truth)
    assert precision > 0.99
    assert f1 > 0.98


def test_matches_are_one_to_one(
    chinese_encoded: tuple[list[EncodedRecord], list[EncodedRecord]],
) -> None:
    links = link_encodings(*chinese_encoded)

    matches = [link for link in links if link.decision is LinkDecision.MATCH]
    assert len({link.a_id for link in matches}) == len(matches)
    assert len({link.b_id for link in matches}) == len(matches)
    assert all(link.score >= 0.5 for link in matches)
    assert all(0.1 <= link.score for link in links)


def test_higher_threshold_gives_fewer_matches(
    chinese_encoded: tuple[list[EncodedRecord], list[EncodedRecord]],
) -> None:
    default = run_linkage(*chinese_encoded)
    strict = run_linkage(*chinese_encoded, threshold=0.999)

    def count(result: object) -> int:
        return sum(1 for link in result.links if link.decision is LinkDecision.MATCH)  # type: ignore[attr-defined]

    assert count(strict) < count(default)
    assert default.model is not None and default.model.prior < 0.01


def test_encodings_under_another_key_are_refused(chinese_set: LinkageSet) -> None:
    a = encode_rows(chinese_set.a[:50])
    b = encode_rows(chinese_set.b[:50], key=bytes(range(1, 33)))

    with pytest.raises(EncodingMismatchError):
        link_encodings(a, b)


def test_bad_threshold_is_refused(
    chinese_encoded: tuple[list[EncodedRecord], list[EncodedRecord]],
) -> None:
    with pytest.raises(ValueError, match="threshold"):
        link_encodings(*chinese_encoded, threshold=1.5)
