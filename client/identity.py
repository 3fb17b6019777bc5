"""Customer identity on the edge: a ``CustomerRef`` becomes one pseudonym, nothing else.

The strongest identifier present is used, in the order phone > e-mail > resident-ID number >
account id, so that every channel that knows a customer's phone number maps that customer
to the same pseudonym (the tenant key is shared by a tenant's edges). A malformed strongest
identifier is *refused*, not skipped in favour of a weaker one: falling back would silently
split one person into two pseudonyms. Reasons name the identifier kind, never its value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from privacy import (
    IdentifierError,
    IdentifierKind,
    IdentityTokenizer,
    LinkageEncoder,
    Pseudonymizer,
    encoded_json_line,
)

from .schemas import CUSTOMER_IDENTIFIERS, CUSTOMER_QUASI_IDENTIFIERS, CustomerRef

logger = logging.getLogger(__name__)

#: Identifier kinds in the order they are preferred.
IDENTIFIER_PRECEDENCE: tuple[IdentifierKind, ...] = tuple(
    IdentifierKind(name) for name in CUSTOMER_IDENTIFIERS
)
#: Fields of a reference that decide its resolution (the cache key).
_CACHE_FIELDS = CUSTOMER_IDENTIFIERS + CUSTOMER_QUASI_IDENTIFIERS
#: ``(kind, identity token)`` pairs of one customer reference.
Tokens = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Resolution:
    """Outcome of resolving a customer reference.

    Parameters
    ----------
    subject : str or None
        The pseudonym, or ``None`` when the reference was refused.
    kind : IdentifierKind or None
        Which identifier produced (or failed to produce) the pseudonym.
    reason : str or None
        Why the reference was refused: a field path and a reason, never the value.
    tokens : Tokens
        ``(kind, it_ token)`` of every identifier of the reference that normalises (the
        server links pseudonyms sharing a token into one person).
    refused_tokens : tuple[str, ...]
        Why the other identifiers gave no token (placeholders such as ``11111111111``,
        malformed values): field paths and reasons, never values.
    encoding : str or None
        The keyed Bloom-filter encoding of the reference's quasi-identifiers (name, birth
        date, address, postcode) as one JSON line, or ``None`` when it carries none.
    """

    subject: str | None
    kind: IdentifierKind | None
    reason: str | None = None
    tokens: Tokens = ()
    refused_tokens: tuple[str, ...] = ()
    encoding: str | None = None

    @property
    def ok(self) -> bool:
        """Whether a pseudonym was produced."""
        return self.subject is not None


def strongest_identifier(ref: CustomerRef) -> tuple[IdentifierKind, str] | None:
    """Return the strongest non-empty identifier of ``ref`` with its kind.

    Parameters
    ----------
    ref : CustomerRef
        The validated customer reference.

    Returns
    -------
    tuple[IdentifierKind, str] or None
        ``(kind, raw value)``, or ``None`` if every identifier is empty.
    """
    for kind in IDENTIFIER_PRECEDENCE:
        value = getattr(ref, kind.value)
        if value is not None and value.strip():
            return kind, value
    return None


class IdentityResolver:
    """Turns customer references into pseudonyms, with a bounded in-memory cache.

    The cache keeps recently seen ``(kind, raw identifier) -> pseudonym`` pairs in the edge
    process's memory only (never on disk), because phone-number parsing dominates the cost
    of ingestion when one customer has many events.

    Parameters
    ----------
    pseudonymizer : Pseudonymizer
        Holds the tenant key.
    cache_size : int
        Maximum number of cached identifiers; the cache is cleared when it is full.
    """

    def __init__(self, pseudonymizer: Pseudonymizer, *, cache_size: int = 100_000) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self._pseudonymizer = pseudonymizer
        self._tokenizer: IdentityTokenizer = pseudonymizer.tokenizer()
        self._encoder: LinkageEncoder = pseudonymizer.linkage_encoder()
        self._cache: dict[tuple[str | None, ...], Resolution] = {}
        self._cache_size = cache_size

    def __repr__(self) -> str:
        return f"IdentityResolver(cached={len(self._cache)})"

    def resolve(self, ref: CustomerRef) -> Resolution:
        """Return the pseudonym of ``ref``'s strongest identifier, or why it was refused.

        Every identifier present also becomes an identity token (``Resolution.tokens``);
        an identifier that cannot (a placeholder, a malformed value) is left out with its
        reason, and only the strongest one refuses the whole reference.

        Parameters
        ----------
        ref : CustomerRef
            The validated customer reference.

        Returns
        -------
        Resolution
            With ``subject`` set, or with ``reason`` such as
            ``"customer.phone: cannot normalise phone: not a phone number"``.
        """
        key = tuple(
            getattr(ref, name) for name in CUSTOMER_IDENTIFIERS + CUSTOMER_QUASI_IDENTIFIERS
        )
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._resolve(ref)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        if self._cache_size:
            self._cache[key] = result
        return result

    def _resolve(self, ref: CustomerRef) -> Resolution:
        found = strongest_identifier(ref)
        if found is None:
            return Resolution(None, None, "customer: no usable identifier")
        kind, value = found
        try:
            subject = self._pseudonymizer.pseudonym(kind, value)
        except IdentifierError as exc:
            # IdentifierError messages carry the kind and a reason, never the value.
            return Resolution(None, kind, f"customer.{kind.value}: {exc}")
        tokens: list[tuple[str, str]] = []
        refused: list[str] = []
        for other in IDENTIFIER_PRECEDENCE:
            raw = getattr(ref, other.value)
            if raw is None or not raw.strip():
                continue
            try:
                tokens.append((other.value, self._tokenizer.token(other, raw)))
            except IdentifierError as exc:
                refused.append(f"customer.{other.value}: {exc}")
        return Resolution(
            subject, kind, None, tuple(tokens), tuple(refused), self._encode(subject, ref)
        )

    def _encode(self, subject: str, ref: CustomerRef) -> str | None:
        """Return the quasi-identifiers' encoding under the subject's pseudonym, if any is given."""
        values = {name: getattr(ref, name) for name in CUSTOMER_QUASI_IDENTIFIERS}
        if not any(v and v.strip() for v in values.values()):
            return None
        return str(encoded_json_line(self._encoder.encode(subject, values)))


def pseudonym_for(ref: CustomerRef, pseudonymizer: Pseudonymizer) -> str:
    """Return the pseudonym of ``ref`` (no cache), raising when it cannot be formed.

    Parameters
    ----------
    ref : CustomerRef
        The validated customer reference.
    pseudonymizer : Pseudonymizer
        Holds the tenant key.

    Returns
    -------
    str
        ``ps_`` followed by 64 hex digits.

    Raises
    ------
    IdentifierError
        If the strongest identifier cannot be normalised (the value is not echoed).
    ValueError
        If ``ref`` holds no non-empty identifier.
    """
    found = strongest_identifier(ref)
    if found is None:
        raise ValueError("customer reference holds no non-empty identifier")
    kind, value = found
    return pseudonymizer.pseudonym(kind, value)
