"""Candidate pairs without comparing everything: blocking keys computed from the filters.

The server holds no key, so its blocking keys come from the encodings themselves (locality-
sensitive hashing on the CLK bits). For each field of each record:

- an *exact* key: a 64-bit hash of the whole filter (equal values give equal filters);
- ``minhashes`` MinHash keys: the first set bit of the filter under a fixed pseudo-random
  permutation of bit positions. Two filters share a MinHash key with probability equal to
  the Jaccard similarity of their set bits, so a value with one typo still shares most.

A field's keys alone are weak (half the file shares ``state``), so pairs are blocked on two
keys of *different* fields at once (``surname`` MinHash and ``date_of_birth`` exact, ...),
plus each field's exact key alone. A block holding more than ``max_block_pairs`` pairs is
dropped: it says no more than "common value", and a true match in it is found through its
other fields. A pair is a candidate when any of its keys puts it in a kept block.

Fields whose value is missing have no keys. The permutations are derived from a fixed seed:
they need not be secret (they act on keyed filters), only equal on both sides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .matrix import EncodingMatrix

logger = logging.getLogger(__name__)

_SEED = 20_240_901
_NO_KEY = np.uint64(0)
_MIX_A = np.uint64(0x9E3779B97F4A7C15)
_MIX_B = np.uint64(0xC2B2AE3D27D4EB4F)


@dataclass(frozen=True, slots=True)
class BlockingConfig:
    """How candidate pairs are generated.

    Parameters
    ----------
    minhashes : int
        Single MinHash keys per field, combined with another field's keys.
    bands : int
        LSH bands per field used alone: each band is ``band_size`` MinHash keys at once,
        selective enough on long values (addresses) to block on one field.
    band_size : int
        MinHash keys per band.
    max_block_pairs : int
        Blocks with more pairs than this are dropped (they are not selective).
    """

    minhashes: int = 1
    bands: int = 4
    band_size: int = 4
    max_block_pairs: int = 1_000

    def __post_init__(self) -> None:
        if self.minhashes < 0 or self.bands < 0 or self.band_size < 1:
            raise ValueError("minhashes and bands must be >= 0, band_size >= 1")
        if self.max_block_pairs < 1:
            raise ValueError("max_block_pairs must be >= 1")


def _mix(values: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Spread 64-bit keys (splitmix64 finaliser); never returns 0, which means "no key"."""
    with np.errstate(over="ignore"):
        values = values ^ (values >> np.uint64(30))
        values = values * np.uint64(0xBF58476D1CE4E5B9)
        values = values ^ (values >> np.uint64(27))
        values = values * np.uint64(0x94D049BB133111EB)
        values = values ^ (values >> np.uint64(31))
    return values | np.uint64(1)


def _exact_keys(words: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """64-bit hash of each filter; ``words`` is ``(records, words)``."""
    key = np.zeros(len(words), dtype=np.uint64)
    for column in range(words.shape[1]):
        key = _mix(key ^ words[:, column] ^ np.uint64(column + 1))
    return key


def _minhashes(
    words: NDArray[np.uint64], count: int, rng: np.random.Generator
) -> NDArray[np.uint64]:
    """``count`` MinHash values of each filter's set bits: ``(records, count)``.

    Every row must have a bit set (missing values are filtered out before).
    """
    bits = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")
    rows, columns = np.nonzero(bits)
    starts = np.searchsorted(rows, np.arange(len(words)))
    out = np.empty((len(words), count), dtype=np.uint64)
    for index in range(count):
        ranks = rng.permutation(bits.shape[1]).astype(np.uint64)
        out[:, index] = np.minimum.reduceat(ranks[columns], starts) + np.uint64(1)
    return out


@dataclass(frozen=True, slots=True)
class BlockingKeys:
    """One side's keys; 0 means "no key" (missing value).

    Parameters
    ----------
    pairable : numpy.ndarray
        ``(records, fields, 1 + minhashes)``: exact key, then single MinHash keys.
    bands : numpy.ndarray
        ``(records, fields, bands)``: LSH band keys used alone.
    """

    pairable: NDArray[np.uint64]
    bands: NDArray[np.uint64]


def blocking_keys(matrix: EncodingMatrix, config: BlockingConfig) -> BlockingKeys:
    """Return one side's blocking keys.

    Parameters
    ----------
    matrix : EncodingMatrix
        One side's encodings.
    config : BlockingConfig
        Numbers of MinHash keys and bands.

    Returns
    -------
    BlockingKeys
        Exact, MinHash and band keys per record and field; 0 where the value is missing.
    """
    records, fields, _ = matrix.words.shape
    pairable = np.zeros((records, fields, 1 + config.minhashes), dtype=np.uint64)
    bands = np.zeros((records, fields, config.bands), dtype=np.uint64)
    per_field = config.minhashes + config.bands * config.band_size
    for field in range(fields):
        present = matrix.present[:, field]
        words = np.ascontiguousarray(matrix.words[present, field, :])
        pairable[present, field, 0] = _exact_keys(words)
        if not per_field or not len(words):
            continue
        # the same seed per field on both sides: equal filters get equal MinHash values
        values = _minhashes(words, per_field, np.random.default_rng([_SEED, field]))
        for index in range(config.minhashes):
            pairable[present, field, 1 + index] = _mix(values[:, index] * _MIX_A)
        for band in range(config.bands):
            start = config.minhashes + band * config.band_size
            band_values = values[:, start : start + config.band_size]
            bands[present, field, band] = _exact_keys(band_values ^ np.uint64(band + 1))
    return BlockingKeys(pairable=pairable, bands=bands)


def _join(
    keys_a: NDArray[np.uint64], keys_b: NDArray[np.uint64], max_block_pairs: int
) -> NDArray[np.int64]:
    """Return pair codes ``i * len(keys_b) + j`` of records sharing a key in a kept block."""
    rows_a, rows_b = np.flatnonzero(keys_a != _NO_KEY), np.flatnonzero(keys_b != _NO_KEY)
    if not len(rows_a) or not len(rows_b):
        return np.empty(0, dtype=np.int64)
    order_a, order_b = rows_a[np.argsort(keys_a[rows_a])], rows_b[np.argsort(keys_b[rows_b])]
    unique_a, start_a, count_a = np.unique(keys_a[order_a], return_index=True, return_counts=True)
    unique_b, start_b, count_b = np.unique(keys_b[order_b], return_index=True, return_counts=True)
    _, in_a, in_b = np.intersect1d(unique_a, unique_b, assume_unique=True, return_indices=True)
    size_a, size_b = count_a[in_a], count_b[in_b]
    pairs = size_a * size_b
    keep = pairs <= max_block_pairs
    size_a, size_b, pairs = size_a[keep], size_b[keep], pairs[keep]
    first_a, first_b = start_a[in_a][keep], start_b[in_b][keep]
    total = int(pairs.sum())
    if not total:
        return np.empty(0, dtype=np.int64)
    block = np.repeat(np.arange(len(pairs)), pairs)
    offset = np.arange(total) - np.repeat(np.cumsum(pairs) - pairs, pairs)
    a = order_a[first_a[block] + offset // size_b[block]]
    b = order_b[first_b[block] + offset % size_b[block]]
    codes: NDArray[np.int64] = a.astype(np.int64) * len(keys_b) + b
    return codes


def _combine(left: NDArray[np.uint64], right: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Key of two keys at once; none when either is none."""
    with np.errstate(over="ignore"):
        combined = _mix(left * _MIX_A ^ right * _MIX_B)
    combined[(left == _NO_KEY) | (right == _NO_KEY)] = _NO_KEY
    return combined


def candidate_pairs(
    a: EncodingMatrix, b: EncodingMatrix, config: BlockingConfig | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return the candidate pairs of two aligned sides.

    Parameters
    ----------
    a, b : EncodingMatrix
        Aligned sides.
    config : BlockingConfig or None
        Blocking parameters (default ``BlockingConfig()``).

    Returns
    -------
    tuple of numpy.ndarray
        Row indices into ``a`` and ``b`` of each distinct candidate pair, sorted.
    """
    config = config or BlockingConfig()
    keys_a, keys_b = blocking_keys(a, config), blocking_keys(b, config)
    pair_a, pair_b = keys_a.pairable, keys_b.pairable
    fields, slots = pair_a.shape[1], pair_a.shape[2]
    cap = config.max_block_pairs
    codes: list[NDArray[np.int64]] = []
    # 1. each field alone: its exact value, and each LSH band
    for field in range(fields):
        codes.append(_join(pair_a[:, field, 0], pair_b[:, field, 0], cap))
        for band in range(config.bands):
            codes.append(_join(keys_a.bands[:, field, band], keys_b.bands[:, field, band], cap))
    # 2. any key of one field together with any key of another field
    for f in range(fields):
        for g in range(f + 1, fields):
            for s in range(slots):
                for t in range(slots):
                    left = _combine(pair_a[:, f, s], pair_a[:, g, t])
                    right = _combine(pair_b[:, f, s], pair_b[:, g, t])
                    codes.append(_join(left, right, cap))
            if len(codes) > 64:
                codes = [np.unique(np.concatenate(codes))]
    unique = np.unique(np.concatenate(codes)) if codes else np.empty(0, dtype=np.int64)
    logger.info("blocking: %d candidate pairs of %d x %d records", len(unique), len(a), len(b))
    return unique // len(b), unique % len(b)
