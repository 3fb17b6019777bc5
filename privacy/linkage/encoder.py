"""Per-field keyed Bloom-filter encodings (CLKs) of a customer's quasi-identifiers.

Each field's value is normalised, cut into n-grams (``tokens``) and every n-gram sets
``hashes`` bits of a ``bits``-long filter at positions taken from HMAC-SHA256 under a key of
that field ("random hashing": no double-hashing structure for an attacker to exploit).

Keys, from the tenant key (32 bytes, ``privacy.load_key_file``):

1. the linkage key is HKDF-SHA256(tenant key, info ``fedprofile/linkage/v1``), so linkage
   encodings share nothing with pseudonyms (HMAC under the tenant key itself);
2. each field has its own key, HMAC(linkage key, kind and field name): the same n-gram sets
   unrelated bits in ``surname`` and ``suburb``, so filters of different fields cannot be
   cross-matched; fields are named in the output by a keyed *label*, so the server cannot
   tell which column is the name;
3. optionally, a record's *salt field* (e.g. gender or birth year) is mixed into every field
   key of that record: the same name with another salt value gives an unrelated filter, which
   breaks frequency alignment across the whole file (at the price of never linking records
   whose salt value differs);
4. optionally, XOR-folding halves each filter (bit i XOR bit i + bits/2).

The server never holds any of these keys; it only compares filters (Dice similarity).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..hazmat.kdf import hkdf_sha256
from ..keys import KEY_BYTES
from .braille import braille_encode
from .normalize import LinkageFieldKind, infer_kind, normalize
from .tokens import tokens_for

#: HKDF label of the linkage key (domain separation from pseudonyms and field encryption).
LINKAGE_KEY_INFO = b"fedprofile/linkage/v1"
#: Normalised values that mean "not known" (treated as missing, not as text).
MISSING_MARKERS = frozenset(
    {"", "na", "n a", "nan", "null", "none", "nil", "unknown", "无", "未知", "不详", "空"}
)


@dataclass(frozen=True, slots=True)
class LinkageField:
    """One field to encode.

    Parameters
    ----------
    name : str
        Column name; it is part of the field key, so both sides must use the same name.
    kind : LinkageFieldKind
        How values are normalised and tokenised.
    """

    name: str
    kind: LinkageFieldKind

    @classmethod
    def parse(cls, spec: str) -> LinkageField:
        """Parse ``NAME`` (kind inferred from the name) or ``NAME:KIND``.

        Raises
        ------
        ValueError
            If the name is empty or the kind is not one of ``text``, ``date``, ``digits``.
        """
        name, _, kind = spec.strip().partition(":")
        name = name.strip()
        if not name:
            raise ValueError("a field name is empty; pass --fields NAME[:KIND],...")
        if not kind:
            return cls(name, infer_kind(name))
        try:
            return cls(name, LinkageFieldKind(kind.strip().lower()))
        except ValueError:
            known = ", ".join(k.value for k in LinkageFieldKind)
            raise ValueError(f"field {name}: unknown kind {kind.strip()!r}; use {known}") from None


@dataclass(frozen=True, slots=True)
class LinkageScheme:
    """Filter parameters; both sides of a linkage must use the same.

    Parameters
    ----------
    bits : int
        Filter length in bits before folding (a power of two, 64 to 65536).
    hashes : int
        Bits set per n-gram (1 to 16).
    xor_fold : bool
        Halve each filter by XOR-folding (hardening; costs some accuracy).
    """

    bits: int = 1024
    hashes: int = 10
    xor_fold: bool = False

    def __post_init__(self) -> None:
        if self.bits < 64 or self.bits > 65536 or self.bits & (self.bits - 1):
            raise ValueError("bits must be a power of two between 64 and 65536")
        if not 1 <= self.hashes <= 16:
            raise ValueError("hashes must be between 1 and 16")

    @property
    def output_bits(self) -> int:
        """Length of the encodings written (half of ``bits`` when folded)."""
        return self.bits // 2 if self.xor_fold else self.bits


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """One record's encodings: its id, the key id, and one filter per field.

    Parameters
    ----------
    id : str
        The record id (not encoded: it is the edge's own reference, e.g. a pseudonym).
    key_id : bytes
        8 bytes identifying the linkage key and scheme (a keyed value, not the key).
    clks : Mapping[str, bytes or None]
        Field label (``LinkageEncoder.label``) -> filter bytes (little-endian bit order),
        ``None`` when missing.
    """

    id: str
    key_id: bytes
    clks: Mapping[str, bytes | None] = field(default_factory=dict)


class LinkageEncoder:
    """Encodes records' quasi-identifiers as per-field keyed Bloom filters.

    Parameters
    ----------
    key : bytes
        The tenant key (32 bytes). It never leaves the edge.
    fields : Sequence[LinkageField]
        The fields to encode, in output order.
    scheme : LinkageScheme or None
        Filter parameters (default ``LinkageScheme()``: 1024 bits, 10 hashes, no folding).
    salt_field : str or None
        Name of a record value mixed into every field key of that record (see module doc);
        ``None`` for no salting.
    """

    def __init__(
        self,
        key: bytes,
        fields: Sequence[LinkageField],
        *,
        scheme: LinkageScheme | None = None,
        salt_field: str | None = None,
    ) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"key must be {KEY_BYTES} bytes, got {len(key)}")
        names = [spec.name for spec in fields]
        if not names or len(set(names)) != len(names):
            raise ValueError("fields must be a non-empty list of distinct names")
        self.fields = tuple(fields)
        self.scheme = scheme or LinkageScheme()
        self.salt_field = salt_field
        self._linkage_key = hkdf_sha256(key=key, info=LINKAGE_KEY_INFO)
        self._field_keys = {
            spec.name: self._mac(f"field\x00{spec.kind.value}\x00{spec.name}".encode())
            for spec in self.fields
        }
        self._labels = {
            spec.name: braille_encode(
                self._mac(f"label\x00{spec.kind.value}\x00{spec.name}".encode())[:4]
            )
            for spec in self.fields
        }
        params = f"{self.scheme.bits}/{self.scheme.hashes}/{self.scheme.xor_fold}/{salt_field}"
        self.key_id = self._mac(b"key-id\x00" + params.encode())[:8]
        self._masks: dict[tuple[str, str], dict[str, int]] = {}

    def __repr__(self) -> str:
        names = ",".join(spec.name for spec in self.fields)
        return f"LinkageEncoder(fields={names!r}, scheme={self.scheme!r}, key=<hidden>)"

    def label(self, name: str) -> str:
        """Return the keyed label of field ``name`` (how the field is named in encodings).

        Raises
        ------
        KeyError
            If ``name`` is not one of the encoder's fields.
        """
        return self._labels[name]

    def _mac(self, message: bytes) -> bytes:
        """HMAC-SHA256 under the linkage key."""
        return hmac.digest(self._linkage_key, message, hashlib.sha256)

    def _token_masks(self, name: str, salt: str) -> tuple[bytes, dict[str, int]]:
        """Return the (salted) field key and its cache of token -> bit mask."""
        key = self._field_keys[name]
        if salt:
            key = hmac.digest(key, b"salt\x00" + salt.encode(), hashlib.sha256)
        return key, self._masks.setdefault((name, salt), {})

    def _filter(self, spec: LinkageField, canonical: str, salt: str) -> bytes:
        """Return the filter bytes of one normalised value."""
        key, cache = self._token_masks(spec.name, salt)
        bits, hashes = self.scheme.bits, self.scheme.hashes
        value = 0
        for token in tokens_for(spec.kind, canonical):
            mask = cache.get(token)
            if mask is None:
                digest = hmac.digest(key, token.encode(), hashlib.sha256)
                mask = 0
                for i in range(hashes):
                    mask |= 1 << (int.from_bytes(digest[2 * i : 2 * i + 2], "little") % bits)
                cache[token] = mask
            value |= mask
        if self.scheme.xor_fold:
            half = bits // 2
            value = (value & ((1 << half) - 1)) ^ (value >> half)
        return value.to_bytes(self.scheme.output_bits // 8, "little")

    def canonical(self, spec: LinkageField, value: str | None) -> str | None:
        """Return the normalised value of a field, or ``None`` when it is missing."""
        if value is None:
            return None
        canonical = normalize(spec.kind, value)
        return None if canonical in MISSING_MARKERS else canonical

    def encode(self, record_id: str, values: Mapping[str, str | None]) -> EncodedRecord:
        """Encode one record.

        Parameters
        ----------
        record_id : str
            The record's id (copied as is).
        values : Mapping[str, str or None]
            Field name -> raw value; absent, ``None``, empty and "unknown" markers (``NULL``,
            ``N/A``, 未知 ...) are missing and encoded as ``None``.

        Returns
        -------
        EncodedRecord
            The record's filters, keyed by field label; raw values are not kept.
        """
        salt = ""
        if self.salt_field is not None:
            raw_salt = values.get(self.salt_field)
            salt = normalize(LinkageFieldKind.TEXT, raw_salt) if raw_salt else ""
        clks: dict[str, bytes | None] = {}
        for spec in self.fields:
            canonical = self.canonical(spec, values.get(spec.name))
            label = self._labels[spec.name]
            clks[label] = None if canonical is None else self._filter(spec, canonical, salt)
        return EncodedRecord(id=record_id, key_id=self.key_id, clks=clks)


#: Quasi-identifiers an edge encodes from its input lines' ``customer`` objects, with their
#: kinds. Every edge of a tenant uses these names, so their field keys (and labels) agree.
CUSTOMER_LINKAGE_FIELDS: tuple[LinkageField, ...] = (
    LinkageField("name", LinkageFieldKind.TEXT),
    LinkageField("birth_date", LinkageFieldKind.DATE),
    LinkageField("address", LinkageFieldKind.TEXT),
    LinkageField("postcode", LinkageFieldKind.DIGITS),
)
