from __future__ import annotations

import numpy as np

from server.identity.linkage import (
    BlockingConfig,
    aligned_matrices,
    candidate_pairs,
    encoding_matrix,
)
from simulations.linkage_data import LinkageSet

from .conftest import encode_rows


def test_blocking_keeps_true_pairs_and_prunes_most(chinese_set: LinkageSet) -> None:
    a, b = encode_rows(chinese_set.a), encode_rows(chinese_set.b)
    left, right = aligned_matrices(encoding_matrix(a), encoding_matrix(b))

    ia, ib = candidate_pairs(left, right)

    found = {(left.ids[i], right.ids[j]) for i, j in zip(ia.tolist(), ib.tolist(), strict=True)}
    completeness = len(found & chinese_set.truth) / len(chinese_set.truth)
    assert completeness > 0.99
    assert len(ia) < 0.1 * len(left) * len(right)
    assert len(set(zip(ia.tolist(), ib.tolist(), strict=True))) == len(ia)  # distinct


def test_block_cap_drops_unselective_blocks() -> None:
    rows = [{"id": str(i), "name": "王伟", "birth_date": "", "address": ""} for i in range(40)]
    left, right = aligned_matrices(
        encoding_matrix(encode_rows(rows)), encoding_matrix(encode_rows(rows))
    )

    loose = candidate_pairs(left, right, BlockingConfig(max_block_pairs=10_000))
    tight = candidate_pairs(left, right, BlockingConfig(max_block_pairs=100))

    assert len(loose[0]) == 40 * 40
    assert len(tight[0]) == 0
    assert isinstance(loose[0], np.ndarray)
