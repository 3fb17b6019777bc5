from __future__ import annotations

from collections.abc import Callable

import pytest

from privacy import PIIConfig, PIIDetector

SpansOf = Callable[[str, str], list[str]]


@pytest.fixture(scope="session")
def detector() -> PIIDetector:
    """One detector for both languages, shared by the PII tests (built in about 1-2 s)."""
    return PIIDetector.create(PIIConfig())


@pytest.fixture(scope="session")
def zh_spans(detector: PIIDetector) -> SpansOf:
    """Substrings of a Chinese text detected as the given entity type."""

    def spans(text: str, entity_type: str) -> list[str]:
        return [
            text[e.start : e.end]
            for e in detector.analyze(text, lang="zh")
            if e.type == entity_type
        ]

    return spans


@pytest.fixture(scope="session")
def en_spans(detector: PIIDetector) -> SpansOf:
    """Substrings of an English text detected as the given entity type."""

    def spans(text: str, entity_type: str) -> list[str]:
        return [
            text[e.start : e.end]
            for e in detector.analyze(text, lang="en")
            if e.type == entity_type
        ]

    return spans
