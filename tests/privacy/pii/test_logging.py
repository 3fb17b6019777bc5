"""No log record emitted while scrubbing contains raw PII from the inputs (invariant 7)."""

import logging

from privacy import PIIDetector
from tests.privacy.pii.factories import en_samples, zh_samples


def test_scrubbing_logs_no_raw_pii(detector: PIIDetector, caplog) -> None:
    zh = zh_samples(150, seed=11)
    en = en_samples(100, seed=12)
    raw_values = {
        s.text[g.start : g.end] for s in (*zh, *en) for g in s.gold if g.end - g.start >= 2
    }
    caplog.set_level(logging.DEBUG)

    detector.scrub_many([s.text for s in zh], lang="zh")
    detector.scrub_many([s.text for s in en], lang="en")
    for sample in zh[:20]:
        detector.scrub(sample.text, lang="zh")

    assert caplog.records, "expected at least the debug summary of scrub_many"
    logged = [f"{r.getMessage()} {r.args!r}" for r in caplog.records]
    leaked = [value for value in raw_values if any(value in line for line in logged)]
    assert leaked == []
