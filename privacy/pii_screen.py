"""A last-line screen for identifier-shaped text: what must never be stored as a value.

The server stores only catalogued, typed values (enums, bounded numbers, catalogued
explanation labels), so nothing free-form should reach it. This screen is the line behind
that: it refuses any text that *looks like* an identifier, whatever the context — a run of
seven or more digits (mobile and landline numbers, resident ID numbers, bank cards, QQ
numbers; full-width digits and Chinese numerals included, separators ignored) or an e-mail
address (``@``, full-width ``＠``). It is deliberately stricter than the edge's masking
recognisers, which must also avoid false alarms in conversations; a catalogued value or
label never needs seven digits. Plain ``re``, no Presidio, so the server stays light.
"""

from __future__ import annotations

import re
import unicodedata

#: Seven or more digits in a row, allowing one space, dash, dot or bracket between them.
_DIGIT_RUN = re.compile(r"[0-9](?:[\s\-.()（）]?[0-9]){6,}")
#: Chinese numerals (with 幺 and 两 as customers write phone numbers).
_NUMERALS = "零〇一二三四五六七八九幺两壹贰叁肆伍陆柒捌玖"
_CN_NUMERAL = re.compile(rf"[{_NUMERALS}](?:\s?[{_NUMERALS}]){{6,}}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+\s*[@＠]\s*[A-Za-z0-9\-]+(?:\s*[.．]\s*[A-Za-z0-9\-]+)+")


def pii_shapes(text: str) -> list[str]:
    """Return the identifier shapes found in ``text`` (empty when none).

    Parameters
    ----------
    text : str
        A value, label or name about to be stored.

    Returns
    -------
    list[str]
        Among ``"digit_run"``, ``"chinese_numeral_run"``, ``"email"``; the text itself is
        never returned, so callers can report the shape without echoing the value.
    """
    folded = unicodedata.normalize("NFKC", text)  # full-width digits and ＠ fold to ASCII
    found: list[str] = []
    if _DIGIT_RUN.search(folded):
        found.append("digit_run")
    if _CN_NUMERAL.search(folded):
        found.append("chinese_numeral_run")
    if _EMAIL.search(folded) or _EMAIL.search(text):
        found.append("email")
    return found
