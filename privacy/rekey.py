"""Tenant key rotation without raw identifiers: re-pseudonymisation by a keyed-hash chain.

Edges keep pseudonyms, never raw identifiers, so a rotated tenant key cannot be applied by
re-hashing identifiers. Instead each new key **generation** re-keys the previous
generation's pseudonyms::

    p1 = ps_ HMAC(k1, kind ":" normalised identifier)        (privacy.Pseudonymizer)
    pn = ps_ HMAC(kn, "fedprofile/repseudonymize/v1:" p(n-1))  for n >= 2

- An edge re-keys everything it stores with the new key alone (:class:`Rekeyer`), and from
  then on pseudonymises new identifiers through the whole chain
  (:class:`ChainedPseudonymizer`); the result is the same either way.
- The edge uploads the ``old -> new`` pairs (:class:`RekeyMapping`); the server renames its
  rows. The server never sees any tenant key (privacy invariant 4) and nobody needs a raw
  identifier again.
- Every edge computes the same pairs (the chain is deterministic), so the mapping is
  idempotent across edges.

Trade-offs (``docs/keys.md``): old generations are kept (new identifiers pass through every
generation), so rotation protects against the loss of *one* old key, not of the whole chain
file; pseudonyms already copied elsewhere keep their old value.

Chain files extend the tenant key file format (``privacy.keys``): one hex key per line,
**oldest first**, mode 0600; a one-line tenant key file is a generation-1 chain.
:func:`rotate_tenant_key_file` appends a generation. The single-key loader
``privacy.load_key_file`` refuses a rotated file, so an edge that was not upgraded stops
instead of silently using generation 1.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from .hazmat.aead import RandomBytes, generate_key
from .hazmat.kdf import hkdf_sha256
from .identifiers import IdentifierKind
from .key_lines import create_key_lines, read_key_lines, replace_key_lines
from .keys import KEY_BYTES
from .pseudonymize import PSEUDONYM_PREFIX, Pseudonymizer

logger = logging.getLogger(__name__)

#: Prefix of the HMAC input of a re-keyed pseudonym (never a valid identifier-kind prefix).
REKEY_LABEL = b"fedprofile/repseudonymize/v1:"
#: Prefix of tenant key ids.
TENANT_KID_PREFIX = "tk_"
_KID_INFO = b"fedprofile/tenant-key-id/v1"
_PSEUDONYM = re.compile(r"^ps_[0-9a-f]{64}$")
_WHAT = "tenant key chain file"
_HEADER = "fedprofile tenant key generations, oldest first; edges only, mode 0600"


def tenant_key_id(key: bytes) -> str:
    """Return the public id of a tenant key (``tk_`` and 16 hex digits, HKDF-derived).

    Parameters
    ----------
    key : bytes
        A 32-byte tenant key.

    Returns
    -------
    str
        Its id; equal keys have equal ids, and the id reveals nothing usable about the key.

    Raises
    ------
    ValueError
        If ``key`` is not 32 bytes.
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"key must be {KEY_BYTES} bytes")
    return TENANT_KID_PREFIX + hkdf_sha256(key=key, info=_KID_INFO, length=8).hex()


def repseudonymize(*, key: bytes, pseudonym: str) -> str:
    """Return the next generation's pseudonym of ``pseudonym`` under ``key``.

    Parameters
    ----------
    key : bytes
        The new generation's 32-byte tenant key.
    pseudonym : str
        A pseudonym of the previous generation (``ps_`` + 64 lower-case hex digits).

    Returns
    -------
    str
        ``ps_`` followed by 64 hex digits.

    Raises
    ------
    ValueError
        If ``key`` is not 32 bytes or ``pseudonym`` is not a pseudonym (not echoed).
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"key must be {KEY_BYTES} bytes")
    if not _PSEUDONYM.match(pseudonym):
        raise ValueError("pseudonym must be 'ps_' followed by 64 lower-case hex digits")
    digest = hmac.new(key, REKEY_LABEL + pseudonym.encode("ascii"), hashlib.sha256)
    return PSEUDONYM_PREFIX + digest.hexdigest()


@dataclass(frozen=True)
class RekeyMapping:
    """Old-to-new pseudonym pairs of one rotation, as an edge uploads them.

    Parameters
    ----------
    from_kid : str
        Id of the last key of the old chain.
    to_kid : str
        Id of the new generation's key.
    pairs : tuple[tuple[str, str], ...]
        ``(old, new)`` pairs, sorted by old pseudonym, each old pseudonym once.
    """

    from_kid: str
    to_kid: str
    pairs: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, str]:
        """Return the pairs as ``{old: new}``.

        Returns
        -------
        dict[str, str]
            The mapping.
        """
        return dict(self.pairs)


class Rekeyer:
    """Maps the previous generation's pseudonyms to the new one; needs only the new key.

    Parameters
    ----------
    new_key : bytes
        The new generation's tenant key.
    from_kid : str
        Id of the previous generation's key (recorded in mappings).
    via : Sequence[bytes]
        Keys of generations between ``from_kid`` and ``new_key``, oldest first, applied
        before ``new_key``: an edge that missed rotations maps straight to the newest one.
    """

    def __init__(self, new_key: bytes, *, from_kid: str, via: Sequence[bytes] = ()) -> None:
        self._to_kid = tenant_key_id(new_key)
        self._keys = (*via, new_key)
        for key in self._keys:
            if len(key) != KEY_BYTES:
                raise ValueError(f"every key must be {KEY_BYTES} bytes")
        self._from_kid = from_kid

    @property
    def from_kid(self) -> str:
        """Id of the generation mapped from."""
        return self._from_kid

    @property
    def to_kid(self) -> str:
        """Id of the generation mapped to."""
        return self._to_kid

    def rekey(self, pseudonym: str) -> str:
        """Return the new pseudonym of ``pseudonym`` (see :func:`repseudonymize`)."""
        for key in self._keys:
            pseudonym = repseudonymize(key=key, pseudonym=pseudonym)
        return pseudonym

    def mapping(self, pseudonyms: Iterable[str]) -> RekeyMapping:
        """Map every pseudonym an edge holds.

        Parameters
        ----------
        pseudonyms : Iterable[str]
            Previous-generation pseudonyms (duplicates allowed).

        Returns
        -------
        RekeyMapping
            One sorted pair per distinct pseudonym.

        Raises
        ------
        ValueError
            If any value is not a pseudonym.
        """
        pairs = tuple((old, self.rekey(old)) for old in sorted(set(pseudonyms)))
        return RekeyMapping(from_kid=self._from_kid, to_kid=self._to_kid, pairs=pairs)

    def __repr__(self) -> str:
        return f"Rekeyer(from_kid={self._from_kid!r}, to_kid={self._to_kid!r}, key=<hidden>)"


class TenantKeyChain:
    """The generations of a tenant key, oldest first; the last one is current.

    Parameters
    ----------
    keys : Sequence[bytes]
        32-byte keys, oldest first.

    Raises
    ------
    ValueError
        If ``keys`` is empty, holds a key of the wrong length or the same key twice.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("keys must hold at least one tenant key")
        self._keys = tuple(keys)
        self._kids = tuple(tenant_key_id(key) for key in self._keys)
        if len(set(self._kids)) != len(self._kids):
            raise ValueError("keys must not hold the same tenant key twice")

    @property
    def generation(self) -> int:
        """Number of generations (1 before any rotation)."""
        return len(self._keys)

    @property
    def kids(self) -> tuple[str, ...]:
        """Key ids, oldest first."""
        return self._kids

    @property
    def current_kid(self) -> str:
        """Id of the current generation's key."""
        return self._kids[-1]

    def pseudonymizer(self, *, region: str = "CN") -> ChainedPseudonymizer:
        """Return a pseudonymiser giving current-generation pseudonyms.

        Parameters
        ----------
        region : str
            Default phone region (as for ``Pseudonymizer``).

        Returns
        -------
        ChainedPseudonymizer
            The pseudonymiser.
        """
        return ChainedPseudonymizer(self._keys, region=region)

    def rekeyer(self, *, since_kid: str | None = None) -> Rekeyer:
        """Return the mapper from an earlier generation to the current one.

        Parameters
        ----------
        since_kid : str or None
            Id of the generation to map from; ``None`` means the previous one.

        Returns
        -------
        Rekeyer
            The mapper (through every generation after ``since_kid``).

        Raises
        ------
        ValueError
            If the chain has a single generation, ``since_kid`` is not in the chain or is
            the current generation (nothing to map).
        """
        if len(self._keys) < 2:
            raise ValueError("a chain of one generation has no previous generation to map")
        if since_kid is None:
            since_kid = self._kids[-2]
        if since_kid not in self._kids[:-1]:
            raise ValueError("since_kid must name an earlier generation of this chain")
        start = self._kids.index(since_kid) + 1
        return Rekeyer(self._keys[-1], from_kid=since_kid, via=self._keys[start:-1])

    def upto(self, kid: str) -> Self:
        """Return the chain as it was when generation ``kid`` was current.

        Parameters
        ----------
        kid : str
            Id of one of the chain's generations.

        Returns
        -------
        TenantKeyChain
            The generations up to and including ``kid``.

        Raises
        ------
        ValueError
            If ``kid`` is not in the chain.
        """
        if kid not in self._kids:
            raise ValueError("kid must name a generation of this chain")
        return type(self)(self._keys[: self._kids.index(kid) + 1])

    def generation_key(self, index: int) -> bytes:
        """Return the key of one generation (0 = oldest), e.g. to check a stored fingerprint.

        Key material: never log it, show it or put it in a message.

        Parameters
        ----------
        index : int
            The generation's position, oldest first.

        Returns
        -------
        bytes
            The 32-byte key.

        Raises
        ------
        IndexError
            If the chain has no such generation.
        """
        return self._keys[index]

    def extends(self, other: TenantKeyChain) -> bool:
        """Return whether this chain is ``other`` followed by one or more generations.

        Parameters
        ----------
        other : TenantKeyChain
            The chain an edge uses now.

        Returns
        -------
        bool
            True when ``other``'s generations are this chain's first ones and this chain has
            more.
        """
        n = len(other._kids)
        return len(self._kids) > n and self._kids[:n] == other._kids

    def rotated(self, *, random_bytes: RandomBytes = os.urandom) -> Self:
        """Return this chain with one more, random, generation.

        Parameters
        ----------
        random_bytes : Callable[[int], bytes]
            Randomness source.

        Returns
        -------
        TenantKeyChain
            The longer chain.
        """
        return type(self)([*self._keys, generate_key(random_bytes)])

    def __repr__(self) -> str:
        return f"TenantKeyChain(kids={list(self._kids)!r})"


class ChainedPseudonymizer(Pseudonymizer):
    """Pseudonyms of the current generation: HMAC under key 1, then re-keyed per generation.

    With a single generation it equals ``Pseudonymizer`` (same pseudonyms); it is one, so it
    serves wherever a ``Pseudonymizer`` is expected (ingestion, identity resolution).

    Parameters
    ----------
    keys : Sequence[bytes]
        The chain's keys, oldest first.
    region : str
        Default phone region for numbers without a country code.
    """

    def __init__(self, keys: Sequence[bytes], *, region: str = "CN") -> None:
        if not keys:
            raise ValueError("keys must hold at least one tenant key")
        super().__init__(keys[0], region=region)
        self._later = tuple(keys[1:])
        for key in self._later:
            if len(key) != KEY_BYTES:
                raise ValueError(f"every key must be {KEY_BYTES} bytes")

    def pseudonym(self, kind: IdentifierKind, value: str) -> str:
        """Return the current-generation pseudonym of an identifier.

        Parameters
        ----------
        kind : IdentifierKind
            What the identifier is.
        value : str
            The raw identifier.

        Returns
        -------
        str
            ``ps_`` followed by 64 hex digits.

        Raises
        ------
        IdentifierError
            If the identifier cannot be normalised (the value is not echoed).
        """
        pseudonym = super().pseudonym(kind, value)
        for key in self._later:
            pseudonym = repseudonymize(key=key, pseudonym=pseudonym)
        return pseudonym

    def __repr__(self) -> str:
        return f"ChainedPseudonymizer(generations={1 + len(self._later)}, keys=<hidden>)"


def create_tenant_key_chain_file(path: Path) -> TenantKeyChain:
    """Create a chain file with one random generation (mode 0600).

    Parameters
    ----------
    path : Path
        Where to write; must not exist.

    Returns
    -------
    TenantKeyChain
        The new one-generation chain.

    Raises
    ------
    KeyFileError
        If the file exists or cannot be written.
    """
    key = generate_key()
    create_key_lines(path, [key], what=_WHAT, header=_HEADER)
    return TenantKeyChain([key])


def save_tenant_key_chain_file(path: Path, chain: TenantKeyChain) -> None:
    """Write a chain to a new file (mode 0600), refusing to overwrite one.

    An edge that generates its own next generation writes it beside its current key file
    and switches to it only once the server has applied its mapping.

    Parameters
    ----------
    path : Path
        Where to write; must not exist.
    chain : TenantKeyChain
        The generations to write, oldest first.

    Raises
    ------
    KeyFileError
        If the file exists or cannot be written.
    """
    create_key_lines(path, list(chain._keys), what=_WHAT, header=_HEADER)


def load_tenant_key_chain(path: Path) -> TenantKeyChain:
    """Read a chain file (or a one-line tenant key file), refusing exposed or bad files.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    TenantKeyChain
        Its generations, oldest first.

    Raises
    ------
    KeyFileError
        If the file is missing, accessible by group or others, malformed, or holds a
        placeholder or repeated key.
    """
    return TenantKeyChain(read_key_lines(path, what=_WHAT))


def rotate_tenant_key_file(path: Path) -> TenantKeyChain:
    """Append a random generation to a chain file (atomic rewrite, mode 0600).

    Run it once, where the tenant key is kept, and distribute the new file to every edge.

    Parameters
    ----------
    path : Path
        An existing chain file or one-line tenant key file.

    Returns
    -------
    TenantKeyChain
        The rotated chain.

    Raises
    ------
    KeyFileError
        If the file cannot be read or rewritten.
    """
    keys = read_key_lines(path, what=_WHAT)
    chain = TenantKeyChain(keys).rotated()
    replace_key_lines(path, [*keys, chain._keys[-1]], what=_WHAT, header=_HEADER)
    logger.info(
        "tenant key chain %s: generation %d (kid %s)", path, chain.generation, chain.current_kid
    )
    return chain
