"""Conversion of validated input lines into the store's pseudonymous records.

The customer reference is already replaced by its pseudonym here; times become UTC. Amounts
become CNY with two decimals (``to_cny``, rates in ``DEFAULT_CNY_RATES`` unless the caller
gives its own), keeping the amount and currency the channel sent. A consent line also gets
an evidence hash computed over its pseudonymous canonical form.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

from consent import ConsentEvent, ConsentStatus, parse_purpose

from .schemas import ConsentLine, EventLine
from .store import StoredConsent, StoredEvent

#: Currency every amount is converted to.
BASE_CURRENCY = "CNY"
#: Date of the packaged reference rates.
DEFAULT_RATES_DATE = "2025-06-30"
#: CNY per one unit of each currency: indicative reference rates of ``DEFAULT_RATES_DATE``
#: (rounded; for profiling, not for accounting). ``fedprofile edge ingest`` uses this table;
#: ``client.ingest.ingest_file(rates=...)`` takes another.
DEFAULT_CNY_RATES: Mapping[str, float] = MappingProxyType(
    {
        "CNY": 1.0,
        "AUD": 4.69,
        "CAD": 5.25,
        "CHF": 9.01,
        "EUR": 8.40,
        "GBP": 9.83,
        "HKD": 0.9126,
        "JPY": 0.04963,
        "KRW": 0.005268,
        "MOP": 0.8866,
        "MYR": 1.70,
        "NZD": 4.35,
        "SGD": 5.62,
        "THB": 0.2203,
        "TWD": 0.2455,
        "USD": 7.16,
    }
)
_CENT = Decimal("0.01")
_CODE = re.compile(r"^[A-Z]{3}$")


def checked_rates(rates: Mapping[str, float]) -> Mapping[str, float]:
    """Return a copy of a rate table with CNY = 1 added.

    Raises
    ------
    ValueError
        If a code is not three capital letters or a rate not a positive finite number.
    """
    for code, rate in rates.items():
        if not _CODE.match(code):
            raise ValueError(f"rates: currency codes must be three capital letters, not {code!r}")
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rates: the rate of {code} must be a positive finite number")
    return MappingProxyType({**rates, BASE_CURRENCY: 1.0})


def rate_problem(currency: str, rates: Mapping[str, float]) -> str | None:
    """Return why ``currency`` cannot be converted with ``rates``, or ``None`` if it can.

    The reason lists the known codes, never the given one.
    """
    if currency.upper() in rates or currency.upper() == BASE_CURRENCY:
        return None
    known = ", ".join(sorted({*rates, BASE_CURRENCY}))
    return f"currency: no conversion rate to CNY for this currency; known: {known}"


def to_cny(amount: float, currency: str, *, rates: Mapping[str, float]) -> float:
    """Convert an amount to CNY, rounded half-up to two decimals (fen).

    Parameters
    ----------
    amount : float
        The amount in ``currency`` as the channel sent it (sign kept).
    currency : str
        ISO 4217 code, any case.
    rates : Mapping[str, float]
        CNY per one unit of each currency (upper-case codes); CNY itself is always 1.

    Returns
    -------
    float
        The CNY amount with at most two decimals.

    Raises
    ------
    KeyError
        If ``rates`` has no rate for ``currency`` (check ``rate_problem`` first).
    """
    code = currency.upper()
    rate = 1.0 if code == BASE_CURRENCY else rates[code]
    value = Decimal(repr(amount))
    if rate != 1.0:
        value *= Decimal(repr(rate))
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def consent_evidence_hash(line: ConsentLine, subject: str) -> str:
    """Return the evidence hash of a consent line: SHA-256 of its canonical form.

    The canonical form is the validated line as compact JSON with sorted keys, timestamps in
    UTC, and the ``customer`` object replaced by the subject's pseudonym, so the hash that
    reaches the server cannot be brute-forced back to a phone number. The channel keeps the
    raw line; with the tenant key it can recompute and prove the hash.

    Parameters
    ----------
    line : ConsentLine
        The validated consent line.
    subject : str
        The customer's pseudonym.

    Returns
    -------
    str
        64 lower-case hex digits.
    """
    data = line.model_dump(mode="json", exclude={"customer"})
    data["ts"] = line.ts.astimezone(UTC).isoformat()
    if line.expires_at is not None:
        data["expires_at"] = line.expires_at.astimezone(UTC).isoformat()
    data["subject"] = subject
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def to_stored_event(
    line: EventLine,
    *,
    subject: str,
    ts: float,
    category: str | None,
    rates: Mapping[str, float] = DEFAULT_CNY_RATES,
) -> StoredEvent:
    """Return the stored form of an event line of ``subject`` (``ts``: UTC epoch seconds).

    ``category`` is the line's category after ``models.normalize_category``. An amount
    becomes CNY with two decimals (a negative refund amount becomes its size); the amount
    and currency as sent are kept as ``original_amount`` / ``original_currency``.

    Raises
    ------
    KeyError
        If the line has an amount in a currency ``rates`` cannot convert.
    """
    amount = original = currency = None
    if line.amount is not None:
        original, currency = line.amount, line.currency.upper()
        amount = abs(to_cny(line.amount, currency, rates=rates))
    return StoredEvent(
        line.event_id, subject, str(line.type), str(line.channel), ts, category,
        amount, None if amount is None else BASE_CURRENCY, line.session_id, line.rating,
        original, currency,
    )  # fmt: skip


def to_stored_consent(line: ConsentLine, subject: str) -> StoredConsent:
    """Return the stored consent event of a consent line of ``subject`` (times in UTC)."""
    event = ConsentEvent(
        subject=subject,
        purpose=parse_purpose(line.purpose),
        status=ConsentStatus(line.status),
        occurred_at=line.ts.astimezone(UTC),
        notice_version=line.notice_version,
        channel=line.channel.value,
        separate=line.separate,
        expires_at=None if line.expires_at is None else line.expires_at.astimezone(UTC),
        evidence_hash=consent_evidence_hash(line, subject),
    )
    return StoredConsent(line.consent_id, event)
