from __future__ import annotations

import numpy as np

from server.identity.linkage.assignment import LinkDecision, decide


def test_one_to_one_best_pair_wins_and_loser_goes_to_review() -> None:
    ia = np.array([0, 0, 1, 2])
    ib = np.array([0, 1, 1, 2])
    probability = np.array([0.99, 0.8, 0.95, 0.2])

    chosen, decisions = decide(ia, ib, probability, threshold=0.5, review_floor=0.1)

    result = {(int(ia[i]), int(ib[i])): d for i, d in zip(chosen, decisions, strict=True)}
    assert result[(0, 0)] is LinkDecision.MATCH
    assert result[(1, 1)] is LinkDecision.MATCH
    assert result[(0, 1)] is LinkDecision.REVIEW  # lost the assignment
    assert result[(2, 2)] is LinkDecision.REVIEW  # in the band
    matched_a = [int(ia[i]) for i, d in zip(chosen, decisions, strict=True) if d == "match"]
    assert len(matched_a) == len(set(matched_a))


def test_weak_alternative_to_a_match_is_not_reviewed_and_low_pairs_dropped() -> None:
    ia = np.array([0, 0, 3])
    ib = np.array([0, 5, 3])
    probability = np.array([0.99, 0.3, 0.01])

    chosen, decisions = decide(ia, ib, probability, threshold=0.5, review_floor=0.1)

    assert chosen.tolist() == [0]
    assert decisions == [LinkDecision.MATCH]
