"""Placeholder identifiers: values people type when they will not give a real one.

A phone number such as ``11111111111``, a service line such as ``10086``, an e-mail address
such as ``test@test.com`` or an account id such as ``guest`` is shared by many unrelated
customers. Pseudonymised as it is, it would give all of them one pseudonym, and linking on its
token would merge them into one person. The edge therefore refuses such a value with a reason
(``normalize_identifier`` raises ``IdentifierError``), before any pseudonym exists; values
that are merely shared by many subjects but look real are the server's hub check's job.

The rules are deliberately narrow (each one names a pattern no personal identifier has):

* phone: every significant digit the same; the digits one consecutive run up or down
  (``12345678901``); a short or service number (fewer than 7 significant digits: ``10086``,
  ``95588``, ``110``); a toll-free, shared-cost (400) or premium-rate business line;
* e-mail: a placeholder local part (``test``, ``null``, ``noreply`` ...), one repeated
  character before the ``@`` (``aaa@``), or a placeholder domain (``test.com``,
  ``*.invalid``, ``*.test``, ``localhost``); the documentation domains ``example.com/.org/.net``
  stay accepted (sample data uses them);
* resident-ID number: the first 17 digits all the same;
* account id: a placeholder word (``guest``, ``anonymous``, ``null``, ``0``, ``-1`` ...) or one
  character repeated.

Written by hand (no library keeps such a list for Chinese identifiers); the phone types come
from ``phonenumbers``' metadata.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

#: Local parts of e-mail addresses that name nobody.
PLACEHOLDER_EMAIL_LOCAL = frozenset(
    {
        "test",
        "testing",
        "null",
        "none",
        "nil",
        "noemail",
        "no-email",
        "nomail",
        "no-mail",
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
        "nobody",
        "unknown",
        "na",
        "n.a",
        "email",
        "mail",
        "user",
        "xxx",
    }
)
#: E-mail domains that deliver to nobody (RFC 2606 / 6761 special-use names and "test.com").
PLACEHOLDER_EMAIL_DOMAINS = frozenset({"test.com", "localhost", "invalid", "test"})
_SPECIAL_USE_SUFFIXES = (".test", ".invalid", ".localhost")
#: Account ids that name nobody (compared case-insensitively).
PLACEHOLDER_ACCOUNTS = frozenset(
    {
        "0",
        "-1",
        "null",
        "none",
        "nil",
        "undefined",
        "unknown",
        "n/a",
        "na",
        "guest",
        "anonymous",
        "anon",
        "test",
        "default",
        "visitor",
        "游客",
        "匿名",
        "访客",
    }
)
_BUSINESS_LINES = {
    PhoneNumberType.TOLL_FREE: "a toll-free business line",
    PhoneNumberType.SHARED_COST: "a shared-cost (400) business line",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate line",
}
_MIN_PERSONAL_DIGITS = 7


def _one_run(digits: str) -> bool:
    """Whether ``digits`` step by +1 or -1 (mod 10) from first to last."""
    steps = {(int(b) - int(a)) % 10 for a, b in zip(digits, digits[1:], strict=False)}
    return len(digits) >= _MIN_PERSONAL_DIGITS and (steps == {1} or steps == {9})


def phone_placeholder(e164: str) -> str | None:
    """Return why a normalised (E.164) phone number is a placeholder, or ``None``."""
    number = phonenumbers.parse(e164, None)
    digits = phonenumbers.national_significant_number(number)
    if len(set(digits)) == 1:
        return "a placeholder phone number (one digit repeated)"
    if _one_run(digits):
        return "a placeholder phone number (a run of consecutive digits)"
    if len(digits) < _MIN_PERSONAL_DIGITS:
        return "a short or service number, not a personal one"
    business = _BUSINESS_LINES.get(phonenumbers.number_type(number))
    return None if business is None else f"{business}, not a personal number"


def email_placeholder(email: str) -> str | None:
    """Return why a normalised (lower-case) e-mail address is a placeholder, or ``None``."""
    local, _, domain = email.rpartition("@")
    if local in PLACEHOLDER_EMAIL_LOCAL or (len(local) > 1 and len(set(local)) == 1):
        return "a placeholder e-mail address"
    if domain in PLACEHOLDER_EMAIL_DOMAINS or domain.endswith(_SPECIAL_USE_SUFFIXES):
        return "an e-mail domain that delivers to nobody"
    return None


def id_number_placeholder(id_number: str) -> str | None:
    """Return why a normalised resident-ID number is a placeholder, or ``None``."""
    return "a placeholder ID number (one digit repeated)" if len(set(id_number[:17])) == 1 else None


def account_placeholder(account: str) -> str | None:
    """Return why a normalised account id is a placeholder, or ``None``."""
    if account.lower() in PLACEHOLDER_ACCOUNTS or (len(account) > 1 and len(set(account)) == 1):
        return "a placeholder account id"
    return None


def token_placeholder(value: str) -> str | None:
    """Return why a device id, WeChat id or member card is a placeholder, or ``None``.

    One character repeated (``00000000-0000-...``, an advertising id with tracking switched
    off), a run of consecutive digits, or a placeholder word (``unknown``, ``null`` ...).
    """
    lowered = value.lower()
    if lowered in PLACEHOLDER_ACCOUNTS or len(set(lowered)) == 1:
        return "a placeholder identifier (one character repeated or a placeholder word)"
    if lowered.isdigit() and _one_run(lowered):
        return "a placeholder identifier (a run of consecutive digits)"
    return None
