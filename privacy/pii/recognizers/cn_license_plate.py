"""Mainland China vehicle licence plates (``CN_LICENSE_PLATE``)."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

from .base import CJKPatternRecognizer

logger = logging.getLogger(__name__)

_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_LETTER = "A-HJ-NP-Z"
#: City letter: real plates skip I and O, but typed text (and test generators) use them.
_CITY = "A-Z"


class CnLicensePlateRecognizer(CJKPatternRecognizer):
    """Recognise civil plates: province character, city letter, 5 (or 6 new-energy) symbols.

    Regular plates have five letters/digits (the last may be 挂/学/警/港/澳); new-energy
    plates have ``D``/``F`` plus five digits or five digits plus ``D``/``F``. A ``·``,
    space or dash after the city letter is accepted.

    Parameters
    ----------
    supported_language : str or None
        Language served; ``zh`` by default.
    context : sequence of str or None
        Context words; ``None`` keeps ``CONTEXT``.
    name : str or None
        Recognizer name.
    """

    ENTITY: ClassVar[str] = "CN_LICENSE_PLATE"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        (
            "cn_plate_new_energy",
            rf"[{_PROVINCES}][{_CITY}][·・ -]?(?:[DF][{_LETTER}0-9][0-9]{{4}}|[0-9]{{5}}[DF])"
            r"(?![A-Za-z0-9])",
            0.6,
        ),
        (
            "cn_plate",
            rf"[{_PROVINCES}][{_CITY}][·・ -]?[{_LETTER}0-9]{{4}}[{_LETTER}0-9挂学警港澳]"
            r"(?![A-Za-z0-9])",
            0.5,
        ),
    )
    CONTEXT: ClassVar[tuple[str, ...]] = ("车牌", "牌照", "车辆", "车号", "plate")
    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(rf"[{_PROVINCES}][{_CITY}]")
