from __future__ import annotations

import numpy as np

from privacy import EncodedRecord
from server.identity.linkage import encoding_matrix, pair_dice, record_dice_rows


def _record(rid: str, **clks: bytes | None) -> EncodedRecord:
    return EncodedRecord(id=rid, key_id=b"k" * 8, clks=clks)


def test_pair_dice_matches_the_definition_and_marks_missing() -> None:
    a = encoding_matrix([_record("a", x=bytes([0b1111] + [0] * 7), y=bytes(8))])
    b = encoding_matrix([_record("b", x=bytes([0b0011] + [0] * 7), y=None)])

    dice = pair_dice(a, b, np.array([0]), np.array([0]))

    assert dice[0, 0] == np.float32(2 * 2 / (4 + 2))
    assert np.isnan(dice[0, 1])


def test_record_dice_rows_baseline_agrees_with_pair_dice() -> None:
    rng = np.random.default_rng(1)
    a_words = rng.integers(0, 2**63, size=(3, 4), dtype=np.uint64)
    b_words = rng.integers(0, 2**63, size=(5, 4), dtype=np.uint64)

    out = record_dice_rows(a_words, b_words, np.arange(3))

    common = np.bitwise_count(a_words[1] & b_words[2]).sum()
    total = np.bitwise_count(a_words[1]).sum() + np.bitwise_count(b_words[2]).sum()
    assert out.shape == (3, 5)
    assert abs(out[1, 2] - 2 * common / total) < 1e-6
