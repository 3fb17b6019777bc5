"""Generated evaluation set: recall and precision on structured PII (phone, ID, card, email)."""

from collections import Counter

import pytest

from privacy import PIIDetector
from tests.privacy.pii.factories import Sample, en_samples, zh_samples

#: Gold and predicted types folded into the structured classes under test.
ZH_CLASSES = {
    "CN_MOBILE": "phone",
    "CN_LANDLINE": "phone",
    "CN_ID_CARD": "id",
    "CN_BANK_CARD": "card",
    "EMAIL_ADDRESS": "email",
}
EN_CLASSES = {"PHONE_NUMBER": "phone", "CREDIT_CARD": "card", "EMAIL_ADDRESS": "email"}


def _score(
    detector: PIIDetector, samples: list[Sample], lang: str, classes: dict[str, str]
) -> dict[str, tuple[float, float]]:
    """Per class: (recall, precision), a span counting only with exact offsets."""
    gold_n, pred_n, hits, correct = Counter(), Counter(), Counter(), Counter()
    for sample in samples:
        gold = {(classes[g.type], g.start, g.end) for g in sample.gold if g.type in classes}
        pred = {
            (classes[e.type], e.start, e.end)
            for e in detector.analyze(sample.text, lang=lang)
            if e.type in classes
        }
        for cls, *_ in gold:
            gold_n[cls] += 1
        for cls, *_ in pred:
            pred_n[cls] += 1
        for cls, *_ in gold & pred:
            hits[cls] += 1
            correct[cls] += 1
    return {c: (hits[c] / gold_n[c], correct[c] / max(pred_n[c], 1)) for c in gold_n}


@pytest.fixture(scope="module")
def zh_set() -> list[Sample]:
    return zh_samples(300, seed=7)


@pytest.fixture(scope="module")
def en_set() -> list[Sample]:
    return en_samples(300, seed=8)


def test_generated_sets_are_large_and_cover_each_class(zh_set, en_set) -> None:
    zh_types = Counter(g.type for s in zh_set for g in s.gold)
    en_types = Counter(g.type for s in en_set for g in s.gold)

    assert len(zh_set) >= 200 and len(en_set) >= 200
    assert all(zh_types[t] >= 30 for t in ZH_CLASSES)
    assert all(en_types[t] >= 30 for t in EN_CLASSES)


def test_zh_structured_pii_recall_and_precision(detector: PIIDetector, zh_set) -> None:
    scores = _score(detector, zh_set, "zh", ZH_CLASSES)

    assert set(scores) == {"phone", "id", "card", "email"}
    for recall, precision in scores.values():
        assert recall >= 0.99
        assert precision >= 0.95


def test_en_structured_pii_recall_and_precision(detector: PIIDetector, en_set) -> None:
    scores = _score(detector, en_set, "en", EN_CLASSES)

    assert set(scores) == {"phone", "card", "email"}
    for recall, precision in scores.values():
        assert recall >= 0.99
        assert precision >= 0.95
