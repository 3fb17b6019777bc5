"""Phone numbers in English text (``PHONE_NUMBER``): ``phonenumbers`` plus NANP shapes.

Presidio's recognizer asks ``phonenumbers`` for *valid* numbers of a few regions. That
misses well-formed North American numbers whose area code is unassigned, the ``001``
international prefix and trailing extensions (``x1234``), and it takes dotted IPv4
addresses for numbers. This subclass adds a pattern pass for NANP shapes, extends spans
over an extension, and drops dotted quads and numbers right after ``order #`` & co.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from presidio_analyzer import RecognizerResult
from presidio_analyzer.predefined_recognizers import PhoneRecognizer

from .base import window

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts

logger = logging.getLogger(__name__)

_NANP = re.compile(
    r"(?<![0-9A-Za-z.+])(?:(?:\+1|001)[ .-]?)?"
    r"(?:\([2-9][0-9]{2}\)[ .-]?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}(?![0-9])"
    r"|(?<![0-9A-Za-z.+])(?:\+1|001)[ .-]?[2-9][0-9]{9}(?![0-9])"
)
_NANP_BARE = re.compile(r"(?<![0-9A-Za-z.+#])[2-9][0-9]{2}[2-9][0-9]{6}(?![0-9])")
_EXTENSION = re.compile(r"[ ]?(?:x|ext\.?|extension)[ ]?[0-9]{1,6}(?![0-9])", re.IGNORECASE)
_DOTTED_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")

SCORE_SHAPE = 0.4
SCORE_BARE = 0.3


class PhoneNumberRecognizer(PhoneRecognizer):
    """Presidio's ``phonenumbers`` recognizer plus NANP patterns and extensions.

    Parameters
    ----------
    supported_language : str
        Language served; ``en`` by default.
    context : sequence of str or None
        Context words; ``None`` keeps Presidio's.
    supported_regions : sequence of str or None
        Regions whose numbering plans are tried; ``None`` keeps Presidio's default list.
    name : str or None
        Recognizer name.
    """

    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(r"[0-9]{3}")
    NEEDS_NLP: ClassVar[bool] = False
    NEGATIVE_PREFIXES: ClassVar[tuple[str, ...]] = (
        "order",
        "order #",
        "order no",
        "invoice",
        "tracking",
        "ref",
        "#",
        "$",
    )

    def __init__(
        self,
        *,
        supported_language: str = "en",
        context: Sequence[str] | None = None,
        supported_regions: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        self._label = name or f"PhoneNumberRecognizer_{supported_language}"
        words = None if context is None else list(context)
        if supported_regions is None:
            super().__init__(context=words, supported_language=supported_language, name=self._label)
        else:
            super().__init__(
                context=words,
                supported_language=supported_language,
                supported_regions=tuple(supported_regions),
                name=self._label,
            )

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        """Return phone numbers from ``phonenumbers`` and the NANP patterns.

        Parameters
        ----------
        text : str
            Text to analyse.
        entities : list of str
            Requested entities.
        nlp_artifacts : NlpArtifacts or None
            Unused.

        Returns
        -------
        list of RecognizerResult
            Phone-number spans, extended over a trailing extension.
        """
        # Presidio annotates the artifacts as required, but its phone matcher never reads them.
        found: list[RecognizerResult] = super().analyze(
            text,
            entities,
            nlp_artifacts,  # type: ignore[arg-type]
        )
        for pattern, score in ((_NANP, SCORE_SHAPE), (_NANP_BARE, SCORE_BARE)):
            for match in pattern.finditer(text):
                start, end = match.span()
                if not any(r.start < end and start < r.end for r in found):
                    found.append(self._shape_result(start, end, score))
        kept = []
        for result in found:
            if _DOTTED_QUAD.fullmatch(text[result.start : result.end]) or self._negated(
                text, result
            ):
                continue
            extension = _EXTENSION.match(text, result.end)
            if extension is not None:
                result.end = extension.end()
            kept.append(result)
        return kept

    def _negated(self, text: str, result: RecognizerResult) -> bool:
        """Whether the number directly follows an order/invoice/tracking cue."""
        prefix, _ = window(text, result.start, result.end, before=12, after=0)
        head = prefix.rstrip(" :#.")
        return any(head.endswith(cue) for cue in self.NEGATIVE_PREFIXES) or prefix.endswith("#")

    def _shape_result(self, start: int, end: int, score: float) -> RecognizerResult:
        """Build a result for a NANP-shaped match."""
        return RecognizerResult(
            entity_type=self.supported_entities[0],
            start=start,
            end=end,
            score=score,
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self._label,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )
