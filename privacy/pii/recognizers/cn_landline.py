"""Mainland China landline numbers (``CN_LANDLINE``)."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

from .base import CJKPatternRecognizer

logger = logging.getLogger(__name__)


class CnLandlineRecognizer(CJKPatternRecognizer):
    """Recognise landline numbers: area code ``0xx``/``0xxx``, a 7-8 digit local number.

    With a separator or brackets after the area code (``010-62345678``, ``(0755)8888 6666``)
    the base score is 0.6; a bare run (``01062345678``) scores 0.3 and needs a context word
    such as ``座机`` to pass the default threshold. An extension (``-123`` or ``转123``)
    is included in the span.

    Parameters
    ----------
    supported_language : str or None
        Language served; ``zh`` by default.
    context : sequence of str or None
        Context words; ``None`` keeps ``CONTEXT``.
    name : str or None
        Recognizer name.
    """

    ENTITY: ClassVar[str] = "CN_LANDLINE"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        (
            "cn_landline_separated",
            r"(?<![0-9])(?:\(0[1-9][0-9]{1,2}\)[ -]?|0[1-9][0-9]{1,2}[ -])"
            r"[2-9][0-9]{2,3}[ -]?[0-9]{4}(?:(?:-|转|ext\.?)[0-9]{1,6})?(?![0-9])",
            0.6,
        ),
        (
            "cn_landline_bare",
            r"(?<![0-9])0[1-9][0-9]{1,2}[2-9][0-9]{6,7}(?![0-9])",
            0.3,
        ),
    )
    CONTEXT: ClassVar[tuple[str, ...]] = (
        "座机",
        "固话",
        "电话",
        "联系",
        "号码",
        "致电",
        "来电",
        "拨打",
        "分机",
        "tel",
        "phone",
    )
    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(r"0[1-9][0-9]")
    NEGATIVE_PREFIXES: ClassVar[tuple[str, ...]] = (
        "金额",
        "订单号",
        "订单编号",
        "单号",
        "编号",
        "流水号",
        "交易号",
    )
    NEGATIVE_SUFFIXES: ClassVar[tuple[str, ...]] = ("元", "块")
