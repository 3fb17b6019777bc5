"""Normalisation of customer identifiers before pseudonymisation.

The same person must map to the same pseudonym whatever format a channel used, so every
identifier is brought to one canonical form first: E.164 phone numbers (mainland China by
default), lower-cased e-mail addresses, upper-case resident-ID numbers, trimmed account ids.
"""

from __future__ import annotations

import re
from enum import StrEnum

import phonenumbers

from .errors import IdentifierError
from .placeholders import (
    account_placeholder,
    email_placeholder,
    id_number_placeholder,
    phone_placeholder,
)


class IdentifierKind(StrEnum):
    """Kinds of strong identifier, strongest first."""

    PHONE = "phone"
    EMAIL = "email"
    ID_NUMBER = "id_number"
    ACCOUNT_ID = "account_id"


_PHONE_CHARS = re.compile(r"^\+?[0-9\s()-]{5,24}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_ID_NUMBER = re.compile(r"^[0-9]{17}[0-9X]$")
_ACCOUNT = re.compile(r"^[\w.:@-]{1,128}$")


def normalize_identifier(kind: IdentifierKind, value: str, *, region: str = "CN") -> str:
    """Return the canonical form of an identifier.

    Parameters
    ----------
    kind : IdentifierKind
        What the value is.
    value : str
        The raw identifier.
    region : str
        Default region for phone numbers written without a country code.

    Returns
    -------
    str
        The canonical form (E.164 for phones).

    Raises
    ------
    IdentifierError
        If the value is not a valid identifier of that kind, or is a placeholder that many
        unrelated people type (``privacy.placeholders``: ``11111111111``, ``10086``,
        ``test@test.com``, ``guest`` ...); the value is not echoed.
    """
    text = value.strip()
    if kind is IdentifierKind.PHONE:
        if not _PHONE_CHARS.match(text):
            raise IdentifierError(kind.value, "phone numbers hold digits, spaces, +, - and ()")
        compact = re.sub(r"[\s()-]", "", text)
        try:
            number = phonenumbers.parse(compact, region)
        except phonenumbers.NumberParseException:
            raise IdentifierError(kind.value, "not a phone number") from None
        if not phonenumbers.is_possible_number(number):
            raise IdentifierError(kind.value, "not a possible phone number")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return _refuse_placeholder(kind, e164, phone_placeholder(e164))
    if kind is IdentifierKind.EMAIL:
        lowered = text.lower()
        if not _EMAIL.match(lowered):
            raise IdentifierError(kind.value, "not an e-mail address")
        return _refuse_placeholder(kind, lowered, email_placeholder(lowered))
    if kind is IdentifierKind.ID_NUMBER:
        upper = re.sub(r"\s", "", text).upper()
        if not _ID_NUMBER.match(upper):
            raise IdentifierError(kind.value, "not an 18-character resident ID number")
        return _refuse_placeholder(kind, upper, id_number_placeholder(upper))
    if not _ACCOUNT.match(text):
        raise IdentifierError(kind.value, "account ids are 1-128 word characters")
    return _refuse_placeholder(kind, text, account_placeholder(text))


def _refuse_placeholder(kind: IdentifierKind, canonical: str, reason: str | None) -> str:
    """Return ``canonical``, or raise with ``reason`` when it is a placeholder."""
    if reason is not None:
        raise IdentifierError(kind.value, f"{reason}; ask for the customer's own or leave it out")
    return canonical
