r"""Shared base of our pattern recognizers: CJK-safe patterns, a pre-filter and negative context.

Python's ``\b`` does not fire between a Hanzi and a digit (both are ``\w``), so every pattern
here delimits with explicit look-arounds such as ``(?<![0-9])``. Subclasses declare their
patterns, context words and checks as class attributes and override ``validate_result``,
the Presidio extension point.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts

logger = logging.getLogger(__name__)

#: Flags of every pattern: no IGNORECASE, patterns spell out the letters they accept.
PATTERN_FLAGS = re.DOTALL | re.MULTILINE

#: Characters allowed between a cue word and the value it introduces.
_CUE_SEPARATORS = " \t:：#＃是为"

#: One Hanzi (CJK unified ideographs, basic block and extension A).
HANZI = "\u3400-\u4dbf\u4e00-\u9fff"


def is_hanzi(text: str) -> bool:
    """Return whether ``text`` is non-empty and made of Hanzi only."""
    return bool(text) and all(
        "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text
    )


def window(text: str, start: int, end: int, *, before: int, after: int) -> tuple[str, str]:
    """Return the lower-cased text just before ``start`` and just after ``end``.

    Parameters
    ----------
    text : str
        The analysed text.
    start, end : int
        The span whose surroundings are wanted.
    before, after : int
        How many characters to take on each side.

    Returns
    -------
    tuple of str
        ``(prefix, suffix)``, each lower-cased.
    """
    return text[max(0, start - before) : start].lower(), text[end : end + after].lower()


class CJKPatternRecognizer(PatternRecognizer):
    """A ``PatternRecognizer`` configured by class attributes, safe next to Hanzi.

    Subclasses set ``ENTITY``, ``PATTERNS`` (name, regex, score triples), ``CONTEXT`` and
    optionally ``TRIGGER``, ``NEGATIVE_PREFIXES`` / ``NEGATIVE_SUFFIXES`` and a
    ``validate_result`` check.

    Parameters
    ----------
    supported_language : str
        Language code the recognizer serves (``zh`` unless the class says otherwise).
    context : sequence of str or None
        Context words that raise the score when found near a match; ``None`` keeps the
        class default ``CONTEXT``.
    name : str or None
        Recognizer name; ``None`` means the class name.
    """

    #: Entity type emitted.
    ENTITY: ClassVar[str]
    #: ``(pattern name, regex, base score)`` triples.
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]]
    #: Words that, found near a match, raise its score (matched as substrings).
    CONTEXT: ClassVar[tuple[str, ...]] = ()
    #: Cheap pre-filter: a text in which this does not match cannot contain the entity.
    TRIGGER: ClassVar[re.Pattern[str] | None] = None
    #: Whether the recognizer reads tokens from the NLP artifacts.
    NEEDS_NLP: ClassVar[bool] = False
    #: Words right before a match (separators such as ``：`` or ``是`` aside) that reject it
    #: unless a ``CONTEXT`` word is also near.
    NEGATIVE_PREFIXES: ClassVar[tuple[str, ...]] = ()
    #: Words right after a match that reject it unless a ``CONTEXT`` word is near.
    NEGATIVE_SUFFIXES: ClassVar[tuple[str, ...]] = ()
    #: Characters inspected on each side for negative and positive cues.
    CUE_WINDOW: ClassVar[int] = 8
    DEFAULT_LANGUAGE: ClassVar[str] = "zh"

    def __init__(
        self,
        *,
        supported_language: str | None = None,
        context: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        patterns = [Pattern(name=n, regex=rx, score=score) for n, rx, score in self.PATTERNS]
        super().__init__(
            supported_entity=self.ENTITY,
            name=name or type(self).__name__,
            supported_language=supported_language or self.DEFAULT_LANGUAGE,
            patterns=patterns,
            context=list(self.CONTEXT if context is None else context),
            global_regex_flags=PATTERN_FLAGS,
        )

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        """Match the patterns, then drop matches that negative context rules out.

        Parameters
        ----------
        text : str
            Text to analyse.
        entities : list of str
            Entities requested (unused: a pattern recognizer has one).
        nlp_artifacts : NlpArtifacts or None
            Unused by pattern recognizers.
        regex_flags : int or None
            Flags overriding ``PATTERN_FLAGS``.

        Returns
        -------
        list of RecognizerResult
            The surviving matches.
        """
        results: list[RecognizerResult] = super().analyze(
            text, entities, nlp_artifacts, regex_flags
        )
        if not results or not (self.NEGATIVE_PREFIXES or self.NEGATIVE_SUFFIXES):
            return results
        return [r for r in results if not self._negated(text, r.start, r.end)]

    def _negated(self, text: str, start: int, end: int) -> bool:
        """Whether a negative cue sits next to the span and no positive one is near."""
        prefix, suffix = window(text, start, end, before=self.CUE_WINDOW, after=self.CUE_WINDOW)
        head = prefix.rstrip(_CUE_SEPARATORS)
        tail = suffix.lstrip(" ")
        negative = any(head.endswith(w) for w in self.NEGATIVE_PREFIXES) or any(
            tail.startswith(w) for w in self.NEGATIVE_SUFFIXES
        )
        if not negative:
            return False
        context = self.context or ()
        return not any(w in prefix or w in suffix for w in context)
