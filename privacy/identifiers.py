"""Normalisation of customer identifiers before pseudonymisation or identity tokens.

The same person must map to the same pseudonym (and identity token) whatever format a channel
used, so every identifier is brought to one canonical form first: E.164 phone numbers
(mainland China by default), lower-cased e-mail addresses, upper-case resident-ID numbers,
trimmed account ids, lower-case device ids without separators, WeChat openid / unionid as
issued (case-sensitive), member-card numbers upper-case without spaces or dashes.
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
    token_placeholder,
)


class IdentifierKind(StrEnum):
    """Kinds of strong identifier, strongest first."""

    PHONE = "phone"
    EMAIL = "email"
    ID_NUMBER = "id_number"
    ACCOUNT_ID = "account_id"
    MEMBER_CARD = "member_card"
    WECHAT_UNIONID = "wechat_unionid"
    WECHAT_OPENID = "wechat_openid"
    DEVICE_ID = "device_id"


_PHONE_CHARS = re.compile(r"^\+?[0-9\s()-]{5,24}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_ID_NUMBER = re.compile(r"^[0-9]{17}[0-9X]$")
_ACCOUNT = re.compile(r"^[\w.:@-]{1,128}$")
_DEVICE = re.compile(r"^[0-9a-z]{8,64}$")
_WECHAT = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_MEMBER_CARD = re.compile(r"^[0-9A-Z]{4,32}$")


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
    if kind is IdentifierKind.ACCOUNT_ID:
        if not _ACCOUNT.match(text):
            raise IdentifierError(kind.value, "account ids are 1-128 word characters")
        return _refuse_placeholder(kind, text, account_placeholder(text))
    return _normalize_device_or_card(kind, text)


def _normalize_device_or_card(kind: IdentifierKind, text: str) -> str:
    """Canonical device ids, WeChat ids and member cards (see the module docstring)."""
    if kind is IdentifierKind.DEVICE_ID:
        compact = re.sub(r"[\s:-]", "", text).lower()
        if not _DEVICE.match(compact):
            raise IdentifierError(kind.value, "device ids are 8-64 letters and digits")
        return _refuse_placeholder(kind, compact, token_placeholder(compact))
    if kind in (IdentifierKind.WECHAT_OPENID, IdentifierKind.WECHAT_UNIONID):
        if not _WECHAT.match(text):
            raise IdentifierError(kind.value, "WeChat ids are 16-64 letters, digits, _ or -")
        return _refuse_placeholder(kind, text, token_placeholder(text))
    compact = re.sub(r"[\s-]", "", text).upper()
    if not _MEMBER_CARD.match(compact):
        raise IdentifierError(kind.value, "member cards are 4-32 letters and digits")
    return _refuse_placeholder(kind, compact, token_placeholder(compact))


def _refuse_placeholder(kind: IdentifierKind, canonical: str, reason: str | None) -> str:
    """Return ``canonical``, or raise with ``reason`` when it is a placeholder."""
    if reason is not None:
        raise IdentifierError(kind.value, f"{reason}; ask for the customer's own or leave it out")
    return canonical
