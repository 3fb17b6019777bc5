"""Keyed identity tokens: what an edge sends so the server can link one person's pseudonyms.

A customer is one pseudonym per strongest identifier (``Pseudonymizer``), but a channel may
know the same person by other identifiers too (an app account and a device id, a desk phone
and a member card). For every identifier it holds, the edge sends a *token*:
HMAC-SHA256 under a subkey derived from the tenant key, over ``<kind>:<canonical value>``.
The kind is a per-type prefix (domain separation: a phone number and a member card with
equal digits never collide), and the subkey keeps tokens distinct from pseudonyms (a token
of a phone is not the pseudonym of that phone). The server never holds the key: it can only
see that two pseudonyms share a token (privacy invariant 8), not what the identifier is, and
cannot test guesses of a phone number against a token.
"""

from __future__ import annotations

import hashlib
import hmac

from .identifiers import IdentifierKind, normalize_identifier
from .keys import KEY_BYTES

IDENTITY_TOKEN_PREFIX = "it_"
#: Label of the token subkey (HMAC of the tenant key); bump the version to re-key tokens.
_SUBKEY_LABEL = b"fedprofile/identity-token/v1"


class IdentityTokenizer:
    """Turns identifiers into identity tokens under one tenant key.

    Parameters
    ----------
    key : bytes
        The tenant key (32 bytes); only a derived subkey is kept.
    region : str
        Default phone region for numbers without a country code.
    """

    def __init__(self, key: bytes, *, region: str = "CN") -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"key must be {KEY_BYTES} bytes, got {len(key)}")
        self._subkey = hmac.new(key, _SUBKEY_LABEL, hashlib.sha256).digest()
        self._region = region

    def __repr__(self) -> str:
        return f"IdentityTokenizer(region={self._region!r}, key=<hidden>)"

    def token(self, kind: IdentifierKind, value: str) -> str:
        """Return the identity token of an identifier.

        Parameters
        ----------
        kind : IdentifierKind
            What the identifier is (part of the HMAC input).
        value : str
            The raw identifier.

        Returns
        -------
        str
            ``it_`` followed by 64 hex digits.

        Raises
        ------
        IdentifierError
            If the identifier cannot be normalised or is a placeholder (the message names
            the kind and the reason, never the value).
        """
        canonical = normalize_identifier(kind, value, region=self._region)
        digest = hmac.new(self._subkey, f"{kind.value}:{canonical}".encode(), hashlib.sha256)
        return IDENTITY_TOKEN_PREFIX + digest.hexdigest()
