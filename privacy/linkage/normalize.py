"""Canonical forms of quasi-identifiers before they are cut into n-grams.

Both sides of a linkage must turn the same person's value into the same string whatever the
channel typed: full-width forms become ASCII (NFKC), case is folded, punctuation becomes a
space and runs of whitespace collapse. Chinese addresses lose the administrative suffixes
people drop when they write quickly (省, 市, 自治区 ...), so 广东省深圳市 and 广东深圳 agree.
Dates in the usual Chinese and ISO spellings (``1990-03-07``, ``19900307``, ``1990/3/7``,
``1990年3月7日``) become ``19900307``; a date that does not parse keeps its digits, so a
typo still shares most of its n-grams with the right value.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class LinkageFieldKind(StrEnum):
    """How a field's values are normalised and cut into n-grams.

    ``text`` (names, addresses: bigrams, plus Hanzi and pinyin n-grams for Chinese),
    ``date`` (birth dates: positional digits and date parts), ``digits`` (postcodes, street
    numbers, phone numbers: digit bigrams).
    """

    TEXT = "text"
    DATE = "date"
    DIGITS = "digits"


#: Column-name fragments that make a field a date or a digit string (lower-cased match).
_DATE_HINTS = ("date", "dob", "birth", "birthday", "生日", "出生", "日期")
_DIGIT_HINTS = (
    "postcode", "post_code", "postal", "zip", "street_number", "house_number", "phone",
    "mobile", "tel", "邮编", "邮政", "电话", "手机", "门牌",
)  # fmt: skip

#: Chinese characters (CJK unified ideographs, extension A and compatibility ideographs).
CJK_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NOT_WORD = re.compile(r"[^\w]+|_+")
_SPACES = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")
#: Long official names of provincial-level regions and the short names people write.
_REGION_SHORT = {
    "内蒙古自治区": "内蒙古",
    "广西壮族自治区": "广西",
    "西藏自治区": "西藏",
    "宁夏回族自治区": "宁夏",
    "新疆维吾尔自治区": "新疆",
    "香港特别行政区": "香港",
    "澳门特别行政区": "澳门",
}
#: Administrative suffixes dropped from Chinese text (both sides, so it is symmetric).
_ADMIN_SUFFIX = re.compile("[省市]")
_YMD = re.compile(r"^(\d{4})\s*[-/.年\s]\s*(\d{1,2})\s*[-/.月\s]\s*(\d{1,2})\s*日?$")
_DMY = re.compile(r"^(\d{1,2})\s*[-/.\s]\s*(\d{1,2})\s*[-/.\s]\s*(\d{4})$")


def infer_kind(name: str) -> LinkageFieldKind:
    """Return the kind a column name suggests (``text`` unless it names a date or digits).

    Parameters
    ----------
    name : str
        The column name, e.g. ``date_of_birth``, ``postcode``, ``出生日期``.

    Returns
    -------
    LinkageFieldKind
        The inferred kind. Pass ``NAME:KIND`` on the command line to override it.
    """
    lowered = name.casefold()
    if any(hint in lowered for hint in _DATE_HINTS):
        return LinkageFieldKind.DATE
    if any(hint in lowered for hint in _DIGIT_HINTS):
        return LinkageFieldKind.DIGITS
    return LinkageFieldKind.TEXT


def normalize_text(value: str) -> str:
    """Return the canonical form of a name or address.

    Parameters
    ----------
    value : str
        The raw value.

    Returns
    -------
    str
        NFKC-normalised (full-width to ASCII), case-folded, punctuation replaced by spaces,
        whitespace collapsed; Chinese administrative suffixes (省, 市, 自治区 ...) removed.
        Empty when nothing is left.
    """
    text = unicodedata.normalize("NFKC", value).casefold()
    if CJK_RE.search(text):
        for long, short in _REGION_SHORT.items():
            text = text.replace(long, short)
        text = text.replace("自治区", "").replace("特别行政区", "")
        text = _ADMIN_SUFFIX.sub("", text)
    text = _NOT_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalize_date(value: str) -> str:
    """Return a date as ``YYYYMMDD``, or its digits when it does not parse.

    Parameters
    ----------
    value : str
        ``1990-03-07``, ``19900307``, ``1990/3/7``, ``1990.3.7``, ``1990年3月7日``, or
        day first ``7/3/1990`` (read month first only when the second number exceeds 12,
        as in ``3/17/1990``).

    Returns
    -------
    str
        Eight digits for a parsed date (month and day are not range-checked, so a swapped
        digit such as ``19900370`` stays comparable); else the value's digits; else its
        normalised text. Empty when nothing is left.
    """
    text = unicodedata.normalize("NFKC", value).strip()
    match = _YMD.match(text)
    if match:
        year, month, day = match.groups()
        return f"{year}{int(month):02d}{int(day):02d}"
    match = _DMY.match(text)
    if match:
        first, second, year = (int(part) for part in match.groups())
        day, month = (second, first) if second > 12 else (first, second)
        return f"{year:04d}{month:02d}{day:02d}"
    digits = "".join(_DIGITS.findall(text))
    return digits if digits else normalize_text(text)


def normalize_digits(value: str) -> str:
    """Return the digits of a code or number (or its normalised text when it has none).

    Parameters
    ----------
    value : str
        A postcode, street number or phone number.

    Returns
    -------
    str
        The digits in order; a value without digits falls back to ``normalize_text``.
    """
    text = unicodedata.normalize("NFKC", value)
    digits = "".join(_DIGITS.findall(text))
    return digits if digits else normalize_text(text)


def normalize(kind: LinkageFieldKind, value: str) -> str:
    """Return the canonical form of ``value`` for a field of ``kind`` (empty = missing)."""
    if kind is LinkageFieldKind.DATE:
        return normalize_date(value)
    if kind is LinkageFieldKind.DIGITS:
        return normalize_digits(value)
    return normalize_text(value)
