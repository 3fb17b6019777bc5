"""Unified social credit codes of organisations (``CN_USCC``)."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

from .base import CJKPatternRecognizer
from .checksums import uscc_valid

logger = logging.getLogger(__name__)


class CnUsccRecognizer(CJKPatternRecognizer):
    """Recognise 18-character unified social credit codes (GB 32100-2015).

    Only codes whose MOD 31 check character is correct are kept (score 1.0). The code
    identifies a company, but sole traders carry one too, so it is treated as PII.

    Parameters
    ----------
    supported_language : str or None
        Language served; ``zh`` by default.
    context : sequence of str or None
        Context words; ``None`` keeps ``CONTEXT``.
    name : str or None
        Recognizer name.
    """

    ENTITY: ClassVar[str] = "CN_USCC"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        (
            "cn_uscc",
            r"(?<![0-9A-Za-z])[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}"
            r"(?![0-9A-Za-z])",
            0.5,
        ),
    )
    CONTEXT: ClassVar[tuple[str, ...]] = ("信用代码", "社会信用", "税号", "营业执照", "纳税人")
    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(r"[0-9]{6}")

    def validate_result(self, pattern_text: str) -> bool:
        """Return whether the GB 32100 check character is correct."""
        return uscc_valid(pattern_text)
