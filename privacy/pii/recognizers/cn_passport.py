"""PRC passport numbers (``CN_PASSPORT``)."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

from .base import CJKPatternRecognizer

logger = logging.getLogger(__name__)


class CnPassportRecognizer(CJKPatternRecognizer):
    """Recognise ordinary PRC passport numbers: ``E`` or ``G`` + 8 digits, ``E`` + letter + 7.

    There is no check digit, and such strings also occur as product or order codes, so
    the base score (0.3) is below the default threshold; a context word such as ``护照``
    nearby lifts it to 0.65.

    Parameters
    ----------
    supported_language : str or None
        Language served; ``zh`` by default.
    context : sequence of str or None
        Context words; ``None`` keeps ``CONTEXT``.
    name : str or None
        Recognizer name.
    """

    ENTITY: ClassVar[str] = "CN_PASSPORT"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        (
            "cn_passport",
            r"(?<![0-9A-Za-z])(?:[EGeg][0-9]{8}|[Ee][A-HJ-NP-Za-hj-np-z][0-9]{7})(?![0-9A-Za-z])",
            0.3,
        ),
    )
    CONTEXT: ClassVar[tuple[str, ...]] = ("护照", "passport", "证件号", "出入境")
    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(r"[EGeg][A-Za-z0-9]?[0-9]{7}")
