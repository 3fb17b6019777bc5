"""Dice similarity of Bloom filters: per field for candidate pairs, and the all-pairs baseline.

Dice(A, B) = 2 |A ∧ B| / (|A| + |B|), computed with ``numpy.bitwise_count`` on 64-bit words.
A pair where either side's value is missing gets ``NaN`` for that field.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .matrix import EncodingMatrix

#: Pairs compared per chunk (bounds the temporary arrays to a few tens of MB).
CHUNK_PAIRS = 32_768


def pair_dice(
    a: EncodingMatrix, b: EncodingMatrix, ia: NDArray[np.int64], ib: NDArray[np.int64]
) -> NDArray[np.float32]:
    """Return per-field Dice similarities of the pairs ``(a[ia[i]], b[ib[i]])``.

    Parameters
    ----------
    a, b : EncodingMatrix
        Aligned sides (same fields, same filter length).
    ia, ib : numpy.ndarray
        Row indices of the pairs (equal lengths).

    Returns
    -------
    numpy.ndarray
        ``float32`` of shape ``(pairs, fields)``; ``NaN`` where either value is missing.
    """
    out = np.empty((len(ia), len(a.fields)), dtype=np.float32)
    for start in range(0, len(ia), CHUNK_PAIRS):
        rows_a, rows_b = ia[start : start + CHUNK_PAIRS], ib[start : start + CHUNK_PAIRS]
        common = np.bitwise_count(a.words[rows_a] & b.words[rows_b]).sum(axis=2)
        count_a, count_b = a.counts[rows_a], b.counts[rows_b]
        total = (count_a + count_b).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            dice = np.where(total > 0, 2.0 * common / total, 1.0)
        dice[(count_a < 0) | (count_b < 0)] = np.nan
        out[start : start + CHUNK_PAIRS] = dice
    return out


def record_dice_rows(
    a_words: NDArray[np.uint64], b_words: NDArray[np.uint64], rows: NDArray[np.int64]
) -> NDArray[np.float32]:
    """Return record-level Dice of each A row in ``rows`` against every B record.

    The plain all-pairs baseline: no blocking, one filter per record (the fields' filters
    side by side), popcount Dice. Used by ``benchmarks/identity.py`` to report what
    exhaustive comparison would cost.

    Parameters
    ----------
    a_words, b_words : numpy.ndarray
        ``uint64`` arrays of shape ``(records, words)``.
    rows : numpy.ndarray
        Indices of the A records to compare.

    Returns
    -------
    numpy.ndarray
        ``float32`` of shape ``(len(rows), len(b_words))``.
    """
    b_counts = np.bitwise_count(b_words).sum(axis=1)
    out = np.empty((len(rows), len(b_words)), dtype=np.float32)
    for i, row in enumerate(rows):
        common = np.bitwise_count(a_words[row] & b_words).sum(axis=1)
        total = int(np.bitwise_count(a_words[row]).sum()) + b_counts
        out[i] = 2.0 * common / np.maximum(total, 1)
    return out
