"""Keyed pseudonyms: HMAC-SHA256 of a normalised identifier under a tenant key.

Deterministic under one key (every edge of a tenant maps a customer to the same pseudonym,
which unifies identity across channels) and unlinkable across keys. Without the key a
pseudonym cannot be reversed by enumerating phone numbers, unlike a plain hash.
"""

from __future__ import annotations

import hashlib
import hmac

from .identifiers import IdentifierKind, normalize_identifier
from .identity_tokens import IdentityTokenizer
from .keys import KEY_BYTES
from .linkage.encoder import CUSTOMER_LINKAGE_FIELDS, LinkageEncoder

PSEUDONYM_PREFIX = "ps_"


class Pseudonymizer:
    """Turns identifiers into pseudonyms under one tenant key.

    Parameters
    ----------
    key : bytes
        The tenant key (32 bytes). Hold it on edges only.
    region : str
        Default phone region for numbers without a country code.
    """

    def __init__(self, key: bytes, *, region: str = "CN") -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"key must be {KEY_BYTES} bytes, got {len(key)}")
        self._key = key
        self._region = region

    def __repr__(self) -> str:
        return f"Pseudonymizer(region={self._region!r}, key=<hidden>)"

    def pseudonym(self, kind: IdentifierKind, value: str) -> str:
        """Return the pseudonym of an identifier.

        Parameters
        ----------
        kind : IdentifierKind
            What the identifier is; it is part of the HMAC input, so a phone number and an
            account id with equal digits never collide.
        value : str
            The raw identifier.

        Returns
        -------
        str
            ``ps_`` followed by 64 hex digits.

        Raises
        ------
        IdentifierError
            If the identifier cannot be normalised.
        """
        canonical = normalize_identifier(kind, value, region=self._region)
        digest = hmac.new(self._key, f"{kind.value}:{canonical}".encode(), hashlib.sha256)
        return PSEUDONYM_PREFIX + digest.hexdigest()

    def tokenizer(self) -> IdentityTokenizer:
        """Return the identity tokenizer of the same tenant key (tokens differ from pseudonyms).

        Returns
        -------
        IdentityTokenizer
            Makes ``it_`` tokens of every identifier a channel holds.
        """
        return IdentityTokenizer(self._key, region=self._region)

    def linkage_encoder(self) -> LinkageEncoder:
        """Return the encoder of customers' quasi-identifiers under the same tenant key.

        Returns
        -------
        LinkageEncoder
            Keyed Bloom-filter encodings of ``CUSTOMER_LINKAGE_FIELDS`` (name, birth date,
            address, postcode), the same on every edge of the tenant.
        """
        return LinkageEncoder(self._key, CUSTOMER_LINKAGE_FIELDS)
