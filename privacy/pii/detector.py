"""The PII detector: finds and masks personal data in Chinese and English text.

``PIIDetector.create`` builds a Presidio ``AnalyzerEngine`` offline (blank spaCy pipelines,
jieba for Chinese, our recognizers, a window context enhancer); build it once and reuse it,
since loading jieba's dictionary takes about a second.

Per text, a cheap pre-filter runs first: each recognizer declares a ``TRIGGER`` pattern
(a digit run, ``@``, a surname character ...) and only recognizers whose trigger occurs
are asked; when none of them needs tokens, the NLP pipeline is skipped too. Full-width
digits and letters are folded to ASCII (one character for one, so offsets are unchanged)
before matching. Results never carry the matched text, only its type and offsets.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpArtifacts
from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..config import PIIConfig
from .context import WindowContextEnhancer
from .errors import PIIConfigError
from .masking import mask_text, resolve_overlaps
from .nlp_engine import OfflineNlpEngine
from .registry import DEFAULT_RECOGNIZERS, NAME_RECOGNIZERS, create_recognizer

if TYPE_CHECKING:
    from presidio_analyzer import RecognizerResult

logger = logging.getLogger(__name__)

Language = Literal["zh", "en"]

#: Full-width ASCII variants (U+FF01-U+FF5E) and the ideographic space, folded one to one.
_WIDTH_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


@dataclass(frozen=True, slots=True)
class DetectedEntity:
    """One detected span; it never holds the matched value.

    Parameters
    ----------
    type : str
        Entity type, e.g. ``CN_MOBILE``, ``CN_ID_CARD``, ``EMAIL_ADDRESS``, ``PERSON``.
    start : int
        Offset (in characters) of the first character in the original text.
    end : int
        Offset after the last character.
    score : float
        Confidence in [0, 1].
    """

    type: str
    start: int
    end: int
    score: float


@dataclass(frozen=True, slots=True)
class ScrubResult:
    """A masked text and the spans that were replaced.

    Parameters
    ----------
    text : str
        The text with each span replaced by ``<TYPE>``.
    entities : tuple of DetectedEntity
        Spans replaced, with offsets into the *original* text, in text order.
    """

    text: str
    entities: tuple[DetectedEntity, ...]

    def counts(self) -> dict[str, int]:
        """Return the number of masked spans per entity type."""
        return dict(Counter(entity.type for entity in self.entities))


@dataclass(frozen=True, slots=True)
class _Gate:
    """Which entities a recognizer yields, when it can fire, and whether it needs tokens."""

    entities: frozenset[str]
    trigger: re.Pattern[str] | None
    needs_nlp: bool


class PIIDetector:
    """Detect and mask PII with a prepared Presidio analyzer.

    Use :meth:`create` to build the offline engine; the constructor only wraps one.

    Parameters
    ----------
    analyzer : presidio_analyzer.AnalyzerEngine
        A loaded analyzer serving every language of ``config``.
    config : PIIConfig
        Languages, score threshold (spans scoring below it are not masked) and the entity
        types to detect.

    Raises
    ------
    PIIConfigError
        If a configured language has no recognizer or a configured entity type has none.
    """

    def __init__(self, *, analyzer: AnalyzerEngine, config: PIIConfig) -> None:
        self._analyzer = analyzer
        self._config = config
        self._gates = {lang: self._gates_for(lang) for lang in config.languages}
        self._empty_tokens = Doc(Vocab(), words=[])
        problems = [
            f"no recognizer for language {lang!r}"
            for lang in config.languages
            if lang not in analyzer.supported_languages
            or not analyzer.registry.get_recognizers(language=lang, all_fields=True)
        ]
        if config.entities is not None:
            served = {e for gates in self._gates.values() for g in gates for e in g.entities}
            problems += [
                f"no recognizer for entity {e!r}" for e in config.entities if e not in served
            ]
        if problems:
            raise PIIConfigError(problems)

    def __repr__(self) -> str:
        return f"PIIDetector(languages={self._config.languages!r})"

    @classmethod
    def create(cls, config: PIIConfig | None = None) -> PIIDetector:
        """Build the offline analyzer and return a detector (never downloads anything).

        Parameters
        ----------
        config : PIIConfig or None
            Settings; ``None`` means the defaults (zh and en, threshold 0.35).

        Returns
        -------
        PIIDetector
            A ready detector; building it takes about 1 s with ``zh`` (jieba dictionary).

        Raises
        ------
        PIIConfigError
            If a configured entity type has no recognizer.
        """
        config = config if config is not None else PIIConfig()
        began = time.perf_counter()
        # 1. recognizers of each language, names configured into the name recognizer
        recognizers: list[EntityRecognizer] = []
        for lang in config.languages:
            for name in DEFAULT_RECOGNIZERS[lang]:
                options: dict[str, object] = {}
                if name in NAME_RECOGNIZERS:
                    options = {"deny_names": config.deny_names, "allow_names": config.allow_names}
                recognizers.append(create_recognizer(name, **options))
        # 2. blank pipelines; known names become jieba words tagged as person names
        nlp_engine = OfflineNlpEngine(
            languages=config.languages, user_words={n: "nr" for n in config.allow_names if n}
        )
        nlp_engine.load()
        # 3. the analyzer with our context enhancer
        languages: list[str] = list(config.languages)
        analyzer = AnalyzerEngine(
            registry=RecognizerRegistry(recognizers=recognizers, supported_languages=languages),
            nlp_engine=nlp_engine,
            supported_languages=languages,
            default_score_threshold=config.score_threshold,
            context_aware_enhancer=WindowContextEnhancer(),
        )
        detector = cls(analyzer=analyzer, config=config)
        logger.info(
            "PII detector for %s ready in %.2f s", ",".join(languages), time.perf_counter() - began
        )
        return detector

    def analyze(self, text: str, *, lang: Language) -> list[DetectedEntity]:
        """Find PII spans in ``text``; overlaps are resolved (best score, then longest).

        Parameters
        ----------
        text : str
            The text to analyse.
        lang : {"zh", "en"}
            Its language; must be one of the configured languages.

        Returns
        -------
        list of DetectedEntity
            Non-overlapping spans in text order, each scoring at least the threshold.

        Raises
        ------
        ValueError
            If ``lang`` is not a configured language.
        """
        gates = self._gates.get(lang)
        if gates is None:
            raise ValueError(f"lang must be one of {self._config.languages}, got {lang!r}")
        if not text:
            return []
        folded = text.translate(_WIDTH_FOLD)
        active = [g for g in gates if g.trigger is None or g.trigger.search(folded)]
        if not active:
            return []
        entities = sorted({e for g in active for e in g.entities})
        artifacts = None
        if not any(g.needs_nlp for g in active):
            artifacts = NlpArtifacts(
                entities=[],
                tokens=self._empty_tokens,
                tokens_indices=[],
                lemmas=[],
                nlp_engine=None,
                language=lang,
            )
        results: list[RecognizerResult] = self._analyzer.analyze(
            folded,
            language=lang,
            entities=entities,
            score_threshold=self._config.score_threshold,
            nlp_artifacts=artifacts,
        )
        return resolve_overlaps(
            DetectedEntity(type=r.entity_type, start=r.start, end=r.end, score=round(r.score, 4))
            for r in results
        )

    def scrub(self, text: str, *, lang: Language) -> ScrubResult:
        """Mask every PII span of ``text`` with its type placeholder (``<CN_MOBILE>``).

        Parameters
        ----------
        text : str
            The text to mask.
        lang : {"zh", "en"}
            Its language; must be one of the configured languages.

        Returns
        -------
        ScrubResult
            The masked text and the spans replaced.

        Raises
        ------
        ValueError
            If ``lang`` is not a configured language.
        """
        entities = self.analyze(text, lang=lang)
        return ScrubResult(text=mask_text(text, entities), entities=tuple(entities))

    def scrub_many(self, texts: Sequence[str], *, lang: Language) -> list[ScrubResult]:
        """Mask a batch of texts of one language.

        Parameters
        ----------
        texts : sequence of str
            The texts to mask.
        lang : {"zh", "en"}
            Their language; must be one of the configured languages.

        Returns
        -------
        list of ScrubResult
            One result per text, in order.

        Raises
        ------
        ValueError
            If ``lang`` is not a configured language.
        """
        results = [self.scrub(text, lang=lang) for text in texts]
        if logger.isEnabledFor(logging.DEBUG):
            totals: Counter[str] = Counter()
            for result in results:
                totals.update(result.counts())
            logger.debug("scrubbed %d %s texts: %s", len(results), lang, dict(totals))
        return results

    def _gates_for(self, lang: str) -> tuple[_Gate, ...]:
        """Pre-filter gates of the language's recognizers, restricted to configured entities."""
        if lang not in self._analyzer.supported_languages:
            return ()
        wanted = set(self._config.entities) if self._config.entities is not None else None
        gates = []
        for recognizer in self._analyzer.registry.get_recognizers(language=lang, all_fields=True):
            entities = frozenset(recognizer.supported_entities)
            if wanted is not None:
                entities &= wanted
            if entities:
                gates.append(
                    _Gate(
                        entities=entities,
                        trigger=getattr(recognizer, "TRIGGER", None),
                        needs_nlp=bool(getattr(recognizer, "NEEDS_NLP", True)),
                    )
                )
        return tuple(gates)
