"""Check-digit algorithms of the identifiers the recognizers validate.

Pure functions over already-extracted candidate strings: Luhn (ISO/IEC 7812, bank cards),
GB 11643-1999 resident ID numbers (ISO 7064 MOD 11-2 plus a birth-date check) and GB
32100-2015 unified social credit codes (MOD 31).
"""

from __future__ import annotations

import datetime as dt
import logging

logger = logging.getLogger(__name__)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

#: Earliest birth year accepted in a resident ID number.
MIN_BIRTH_YEAR = 1880


def digits_only(value: str) -> str:
    """Return the ASCII digits of ``value`` (separators such as spaces and dashes dropped)."""
    return "".join(ch for ch in value if "0" <= ch <= "9")


def luhn_valid(number: str) -> bool:
    """Return whether a digit string passes the Luhn (mod 10) check.

    Parameters
    ----------
    number : str
        Digits only; any other character makes the check fail.

    Returns
    -------
    bool
        True when the last digit is the correct Luhn check digit.
    """
    if not number.isascii() or not number.isdigit() or len(number) < 2:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def id_card_check_char(first17: str) -> str:
    """Return the GB 11643 check character (``0``-``9`` or ``X``) of 17 leading digits.

    Raises
    ------
    ValueError
        If ``first17`` is not 17 ASCII digits.
    """
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("first17 must be exactly 17 ASCII digits")
    total = sum((ord(ch) - 48) * weight for ch, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def id_card_valid(value: str, *, today: dt.date | None = None) -> bool:
    """Return whether an 18-character resident ID number is plausible.

    The check character must match (ISO 7064 MOD 11-2) and the embedded birth date
    (characters 7-14) must be a real calendar date between 1880 and ``today``. The region
    code is not checked against a list, so retired or new codes are still recognised.

    Parameters
    ----------
    value : str
        The candidate, 17 digits followed by a digit or ``X``/``x``.
    today : datetime.date or None
        Upper bound of the birth date; ``None`` means the local date today.

    Returns
    -------
    bool
        True for a checksum-valid number with a plausible birth date.
    """
    if len(value) != 18 or not value[:17].isascii() or not value[:17].isdigit():
        return False
    if value[17].upper() != id_card_check_char(value[:17]):
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    upper = today if today is not None else dt.date.today()
    return MIN_BIRTH_YEAR <= born.year and born <= upper


def uscc_valid(value: str) -> bool:
    """Return whether an 18-character unified social credit code passes GB 32100 MOD 31.

    Parameters
    ----------
    value : str
        The candidate (upper case; letters I, O, S, V, Z never occur).

    Returns
    -------
    bool
        True when the last character is the correct check character.
    """
    if len(value) != 18 or any(ch not in USCC_ALPHABET for ch in value):
        return False
    total = sum(
        USCC_ALPHABET.index(ch) * weight
        for ch, weight in zip(value[:17], _USCC_WEIGHTS, strict=True)
    )
    expected = (31 - total % 31) % 31
    return value[17] == USCC_ALPHABET[expected]
