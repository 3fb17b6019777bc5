"""Context enhancement over a character window, without logging the surrounding text.

Presidio's ``LemmaContextAwareEnhancer`` compares token lemmas (empty in blank pipelines)
and logs the surrounding words at DEBUG, which would put raw text into logs. This enhancer
looks for a recognizer's context words as substrings of the characters right before (and
shortly after) a match, which also suits Chinese, where context words are often glued to
their neighbours (``手机号码是``), and it logs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts

logger = logging.getLogger(__name__)

#: Characters inspected (before, after) a match, per language; others use ``en``.
DEFAULT_WINDOWS: Mapping[str, tuple[int, int]] = {"zh": (12, 6), "en": (40, 12)}


class WindowContextEnhancer(ContextAwareEnhancer):
    """Raise a result's score when its recognizer's context words occur next to it.

    Parameters
    ----------
    context_similarity_factor : float
        Amount added to the score when a context word is found.
    min_score_with_context_similarity : float
        Floor of the score after a context word is found.
    windows : mapping of str to (int, int) or None
        Characters inspected before and after a match, per language.
    """

    def __init__(
        self,
        *,
        context_similarity_factor: float = 0.35,
        min_score_with_context_similarity: float = 0.4,
        windows: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        self.windows = dict(DEFAULT_WINDOWS if windows is None else windows)
        self._fallback = self.windows.get("en", DEFAULT_WINDOWS["en"])
        before, after = self._fallback
        super().__init__(
            context_similarity_factor=context_similarity_factor,
            min_score_with_context_similarity=min_score_with_context_similarity,
            context_prefix_count=before,
            context_suffix_count=after,
        )

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        """Boost, in place, the results whose context words occur in their window.

        Parameters
        ----------
        text : str
            The analysed text.
        raw_results : list of RecognizerResult
            Results of all recognizers (modified in place and returned).
        nlp_artifacts : NlpArtifacts
            Unused: the window is read from the raw text.
        recognizers : list of EntityRecognizer
            The recognizers that produced the results.
        context : list of str or None
            Extra context words supplied by the caller, applied to every result.

        Returns
        -------
        list of RecognizerResult
            The same results with boosted scores.
        """
        by_id = {rec.id: rec for rec in recognizers}
        extra = [w.lower() for w in context or ()]
        for result in raw_results:
            metadata = result.recognition_metadata or {}
            if metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY):
                continue
            recognizer = by_id.get(metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
            if recognizer is None or not recognizer.context:
                continue
            before, after = self.windows.get(recognizer.supported_language, self._fallback)
            start, end = result.start, result.end
            surround = (
                text[max(0, start - before) : start].lower()
                + "\n"
                + text[end : end + after].lower()
            )
            words = [w.lower() for w in recognizer.context] + extra
            if not any(w and w in surround for w in words):
                continue
            result.score = min(
                max(
                    result.score + self.context_similarity_factor,
                    self.min_score_with_context_similarity,
                ),
                self.MAX_SCORE,
            )
            metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
            result.recognition_metadata = metadata
        return raw_results
