"""Bank card numbers as issued in China (``CN_BANK_CARD``)."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

from .base import CJKPatternRecognizer
from .checksums import digits_only, luhn_valid

logger = logging.getLogger(__name__)

#: Issuer prefix of UnionPay cards, a few of which are not Luhn-valid.
UNIONPAY_PREFIX = "62"


class CnBankCardRecognizer(CJKPatternRecognizer):
    """Recognise 16-19 digit card numbers (UnionPay ``62``, Visa, Mastercard, JCB ...).

    A Luhn-valid number scores 1.0. A few UnionPay cards are not Luhn-valid, so a ``62``
    number that fails Luhn keeps a low score (0.3) that a context word such as ``卡号``
    lifts over the default threshold; any other Luhn failure is dropped. Numbers right
    after ``订单号`` or ``运单号`` are rejected unless a card context word is also near.
    When an 18-digit number is also a valid ID number, the detector keeps ``CN_ID_CARD``.

    Parameters
    ----------
    supported_language : str or None
        Language served; ``zh`` by default.
    context : sequence of str or None
        Context words; ``None`` keeps ``CONTEXT``.
    name : str or None
        Recognizer name.
    """

    ENTITY: ClassVar[str] = "CN_BANK_CARD"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        (
            "cn_bank_card",
            r"(?<![0-9])[3-6][0-9]{3}(?:[ -]?[0-9]{4}){3}(?:[ -]?[0-9]{1,3})?(?![0-9])",
            0.3,
        ),
    )
    CONTEXT: ClassVar[tuple[str, ...]] = (
        "银行卡",
        "卡号",
        "储蓄卡",
        "信用卡",
        "借记卡",
        "银联",
        "账号",
        "帐号",
        "账户",
        "帐户",
        "开户",
        "打款",
        "退款到",
        "card",
    )
    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(r"[0-9]{4}")
    NEGATIVE_PREFIXES: ClassVar[tuple[str, ...]] = (
        "订单号",
        "订单编号",
        "订单",
        "单号",
        "运单号",
        "快递单号",
        "物流单号",
        "流水号",
        "交易号",
        "编号",
    )

    def validate_result(self, pattern_text: str) -> bool | None:
        """Luhn-valid: True; UnionPay failing Luhn: None (keep low score); else False."""
        number = digits_only(pattern_text)
        if not 16 <= len(number) <= 19:
            return False
        if luhn_valid(number):
            return True
        return None if number.startswith(UNIONPAY_PREFIX) else False
