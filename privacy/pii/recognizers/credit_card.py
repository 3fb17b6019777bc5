"""Payment card numbers in English text (``CREDIT_CARD``).

Presidio's pattern covers 13-17 digits starting with 1, 3-6. Cards are 12-19 digits and
Mastercard also issues the 2221-2720 range, so a second pattern covers 12-19 digits starting
with 0-6 (grouped by spaces or dashes, or not at all); Presidio's Luhn check still decides.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import ClassVar

from presidio_analyzer import Pattern
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

logger = logging.getLogger(__name__)

#: 12-19 digits, optionally in groups of 3-4 separated by one space or dash.
WIDE_CARD_REGEX = (
    r"(?<![0-9A-Za-z])[0-6][0-9]{3}(?:[ -]?[0-9]{3,4}){1,3}(?:[ -]?[0-9]{1,4})?(?![0-9])"
)


class CreditCardNumberRecognizer(CreditCardRecognizer):
    """Presidio's Luhn-validated credit-card recognizer, widened to 12-19 digits.

    Parameters
    ----------
    supported_language : str
        Language served; ``en`` by default.
    context : sequence of str or None
        Context words; ``None`` keeps Presidio's.
    name : str or None
        Recognizer name.
    """

    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(r"[0-9]{4}")
    NEEDS_NLP: ClassVar[bool] = False

    def validate_result(self, pattern_text: str) -> bool:
        """Return whether the number has 12-19 digits and passes Luhn."""
        digits = sum(ch.isdigit() for ch in pattern_text)
        return 12 <= digits <= 19 and bool(super().validate_result(pattern_text))

    def __init__(
        self,
        *,
        supported_language: str = "en",
        context: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        patterns = [
            *CreditCardRecognizer.PATTERNS,
            Pattern(name="card_12_19_digits", regex=WIDE_CARD_REGEX, score=0.3),
        ]
        super().__init__(
            patterns=patterns,
            context=None if context is None else list(context),
            supported_language=supported_language,
            name=name or f"CreditCardNumberRecognizer_{supported_language}",
        )
