"""Mainland China mobile numbers (``CN_MOBILE``)."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

from .base import CJKPatternRecognizer

logger = logging.getLogger(__name__)


class CnMobileRecognizer(CJKPatternRecognizer):
    """Recognise 11-digit mainland mobile numbers.

    Numbers start with 13-19; an optional ``+86`` / ``0086`` prefix (also in brackets) and
    3-4-4 groups separated by a space or a dash are accepted. Amounts and order numbers that
    look like a mobile number (``金额13812345678元``) are rejected by negative context.

    Parameters
    ----------
    supported_language : str or None
        Language served; ``zh`` by default.
    context : sequence of str or None
        Context words; ``None`` keeps ``CONTEXT``.
    name : str or None
        Recognizer name.
    """

    ENTITY: ClassVar[str] = "CN_MOBILE"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        (
            "cn_mobile",
            r"(?<![0-9])(?:\(?(?:\+|00)86\)?[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])",
            0.6,
        ),
    )
    CONTEXT: ClassVar[tuple[str, ...]] = (
        "手机",
        "电话",
        "联系",
        "号码",
        "致电",
        "来电",
        "拨打",
        "回电",
        "微信",
        "短信",
        "tel",
        "mobile",
        "phone",
    )
    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(r"1[3-9][0-9]")
    NEGATIVE_PREFIXES: ClassVar[tuple[str, ...]] = (
        "金额",
        "价格",
        "价钱",
        "订单号",
        "订单编号",
        "单号",
        "编号",
        "流水号",
        "交易号",
        "货号",
        "¥",
        "￥",
    )
    NEGATIVE_SUFFIXES: ClassVar[tuple[str, ...]] = ("元", "块", "万", "rmb", "人民币")
