from __future__ import annotations

import numpy as np
import pytest

from server.identity.linkage.fellegi_sunter import (
    LEVELS,
    MISSING_LEVEL,
    agreement_levels,
    fit_fellegi_sunter,
    random_pair_levels,
)


def test_agreement_levels_cut_points_and_missing() -> None:
    dice = np.array([[1.0, 0.95, 0.85, 0.75, 0.65, 0.1, np.nan]], dtype=np.float32)

    assert agreement_levels(dice).tolist() == [[0, 1, 2, 3, 4, 5, MISSING_LEVEL]]


def _simulated(n_match: int, n_non: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three fields; matches mostly agree exactly, non-matches mostly disagree."""
    rng = np.random.default_rng(seed)
    m = np.array([0.85, 0.05, 0.04, 0.03, 0.02, 0.01])
    u = np.array([0.01, 0.005, 0.01, 0.02, 0.055, 0.9])
    matches = rng.choice(LEVELS, size=(n_match, 3), p=m)
    non = rng.choice(LEVELS, size=(n_non, 3), p=u)
    levels = np.concatenate([matches, non]).astype(np.int8)
    truth = np.r_[np.ones(n_match, bool), np.zeros(n_non, bool)]
    return levels, truth


def test_em_on_candidates_recovers_prior_and_separates_classes() -> None:
    levels, truth = _simulated(2_000, 20_000)

    model = fit_fellegi_sunter(levels, ("a", "b", "c"))

    assert model.prior == pytest.approx(2_000 / 22_000, rel=0.1)
    assert np.all(model.weights[:, 0] > 4)  # exact agreement is evidence for a match
    assert np.all(model.weights[:, 5] < -2)  # disagreement is evidence against
    predicted = model.match_probability(levels) >= 0.5
    assert (predicted == truth).mean() > 0.97


def test_em_with_random_pair_u_over_all_pairs() -> None:
    levels, truth = _simulated(2_000, 20_000)
    random_levels, _ = _simulated(2, 200_000, seed=1)

    model = fit_fellegi_sunter(
        levels,
        ("a", "b", "c"),
        random_pairs=random_pair_levels(random_levels),
        total_pairs=2_000_000,
    )

    assert model.prior == pytest.approx(2_000 / 2_000_000, rel=0.2)
    assert np.all(model.weights[:, 0] > 4)
    predicted = model.match_probability(levels) >= 0.5
    assert (predicted == truth).mean() > 0.95


def test_missing_level_is_neutral() -> None:
    levels, _ = _simulated(500, 5_000)
    model = fit_fellegi_sunter(levels, ("a", "b", "c"))
    base = np.array([[0, 0, 5]], dtype=np.int8)
    missing = np.array([[0, 0, MISSING_LEVEL]], dtype=np.int8)
    agree = np.array([[0, 0, 0]], dtype=np.int8)

    assert model.log_odds(base)[0] < model.log_odds(missing)[0] < model.log_odds(agree)[0]


def test_fit_refuses_empty_input() -> None:
    with pytest.raises(ValueError):
        fit_fellegi_sunter(np.empty((0, 2), dtype=np.int8), ("a", "b"))
