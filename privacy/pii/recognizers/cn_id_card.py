"""Resident identity card numbers of the PRC (``CN_ID_CARD``)."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

from .base import CJKPatternRecognizer
from .checksums import digits_only, id_card_valid

logger = logging.getLogger(__name__)


class CnIdCardRecognizer(CJKPatternRecognizer):
    """Recognise 18-character resident ID numbers (GB 11643-1999).

    A match must carry a correct ISO 7064 MOD 11-2 check character and a real birth date
    (1880 to today); it then scores 1.0. Anything else is dropped, so a wrong check digit
    never produces a span. Groups separated as 6-8-4 by spaces or dashes are accepted.

    Parameters
    ----------
    supported_language : str or None
        Language served; ``zh`` by default.
    context : sequence of str or None
        Context words; ``None`` keeps ``CONTEXT``.
    name : str or None
        Recognizer name.
    """

    ENTITY: ClassVar[str] = "CN_ID_CARD"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        (
            "cn_id_card",
            r"(?<![0-9A-Za-z])[1-9][0-9]{5}[ -]?(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])"
            r"(?:0[1-9]|[12][0-9]|3[01])[ -]?[0-9]{3}[0-9Xx](?![0-9A-Za-z])",
            0.5,
        ),
    )
    CONTEXT: ClassVar[tuple[str, ...]] = ("身份证", "证件", "身份号", "公民身份", "id")
    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(r"[0-9]{4}")

    def validate_result(self, pattern_text: str) -> bool:
        """Return whether the match is a checksum-valid ID with a plausible birth date."""
        tail = pattern_text[-1:].upper()
        compact = digits_only(pattern_text[:-1]) + tail
        return id_card_valid(compact)
