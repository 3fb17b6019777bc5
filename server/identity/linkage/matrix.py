"""Encoded records as bit matrices: the form blocking and comparison work on.

An ``EncodingMatrix`` holds one side's filters as ``uint64`` words, shape
``(records, fields, words)``, with each filter's popcount (``-1`` where the value is
missing). ``aligned_matrices`` checks that two sides were encoded under the same key and
scheme and keeps the fields both sides have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from privacy import EncodedRecord, EncodingMismatchError

#: Popcount stored for a missing value.
MISSING = -1


@dataclass(frozen=True, slots=True)
class EncodingMatrix:
    """One side's encodings as bit matrices.

    Parameters
    ----------
    ids : list of str
        Record ids, in row order.
    fields : tuple of str
        Field names, in column order.
    words : numpy.ndarray
        ``uint64`` array of shape ``(records, fields, words)``; zero where missing.
    counts : numpy.ndarray
        ``int32`` popcounts of shape ``(records, fields)``; ``MISSING`` where missing.
    key_id : bytes
        The key and scheme id the records were encoded under.
    """

    ids: list[str]
    fields: tuple[str, ...]
    words: NDArray[np.uint64]
    counts: NDArray[np.int32]
    key_id: bytes

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def present(self) -> NDArray[np.bool_]:
        """Boolean ``(records, fields)``: the value is known."""
        present: NDArray[np.bool_] = self.counts != MISSING
        return present

    def select(self, fields: Sequence[str]) -> EncodingMatrix:
        """Return the matrix restricted to ``fields`` (in that order)."""
        index = [self.fields.index(name) for name in fields]
        return EncodingMatrix(
            ids=self.ids,
            fields=tuple(fields),
            words=np.ascontiguousarray(self.words[:, index, :]),
            counts=np.ascontiguousarray(self.counts[:, index]),
            key_id=self.key_id,
        )


def _field_lengths(records: Sequence[EncodedRecord], fields: Sequence[str], side: str) -> list[int]:
    """Return each field's filter length in bytes (checked equal across records)."""
    lengths: dict[str, int] = {}
    for record in records:
        for name in fields:
            clk = record.clks.get(name)
            if clk is None:
                continue
            if lengths.setdefault(name, len(clk)) != len(clk):
                raise EncodingMismatchError(f"{side}: field {name} has filters of two lengths")
    return [lengths.get(name, 8) for name in fields]


def encoding_matrix(records: Sequence[EncodedRecord], *, side: str = "input") -> EncodingMatrix:
    """Pack encoded records into an ``EncodingMatrix``.

    Parameters
    ----------
    records : Sequence[EncodedRecord]
        One side's records (at least one).
    side : str
        Name used in error messages (e.g. the file name).

    Returns
    -------
    EncodingMatrix
        Fields in the order of the first record.

    Raises
    ------
    EncodingMismatchError
        If the records are empty, mix key ids, or a field's filters differ in length.
    """
    if not records:
        raise EncodingMismatchError(f"{side}: no encoded records")
    key_id = records[0].key_id
    if any(record.key_id != key_id for record in records):
        raise EncodingMismatchError(f"{side}: records were encoded under different keys")
    fields = tuple(records[0].clks)
    lengths = _field_lengths(records, fields, side)
    width = -(-max(lengths) // 8) * 8
    buffer = bytearray(len(records) * len(fields) * width)
    present = np.zeros((len(records), len(fields)), dtype=bool)
    for row, record in enumerate(records):
        base = row * len(fields) * width
        for column, name in enumerate(fields):
            clk = record.clks.get(name)
            if clk is not None:
                start = base + column * width
                buffer[start : start + len(clk)] = clk
                present[row, column] = True
    words = np.frombuffer(buffer, dtype="<u8").reshape(len(records), len(fields), width // 8)
    words = words.astype(np.uint64, copy=False)
    counts = np.bitwise_count(words).sum(axis=2, dtype=np.int32)
    counts[~present] = MISSING
    return EncodingMatrix(
        ids=[record.id for record in records],
        fields=fields,
        words=words,
        counts=counts,
        key_id=key_id,
    )


def aligned_matrices(a: EncodingMatrix, b: EncodingMatrix) -> tuple[EncodingMatrix, EncodingMatrix]:
    """Return both sides restricted to their common fields, in A's order.

    Raises
    ------
    EncodingMismatchError
        If the sides were encoded under different keys or schemes, share no field, or a
        shared field has filters of different lengths.
    """
    if a.key_id != b.key_id:
        raise EncodingMismatchError(
            "the two files were encoded under different keys or schemes; "
            "encode both with the same --key and options"
        )
    common = [name for name in a.fields if name in b.fields]
    if not common:
        raise EncodingMismatchError("the two files share no field; encode the same --fields")
    a, b = a.select(common), b.select(common)
    if a.words.shape[2] != b.words.shape[2]:
        raise EncodingMismatchError("the two files hold filters of different lengths")
    return a, b
