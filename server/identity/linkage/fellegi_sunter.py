"""Fellegi–Sunter model fitted by expectation–maximisation on candidate pairs.

Each field's Dice similarity is cut into ``LEVELS`` agreement levels (exact, ≥0.9, ≥0.8,
≥0.7, ≥0.6, below); a missing value on either side is its own state that counts neither for
nor against a match. Under conditional independence, a pair with comparison vector γ has

    P(match | γ) = λ·Π m_f(γ_f) / (λ·Π m_f(γ_f) + (1 − λ)·Π u_f(γ_f)),

with m_f / u_f the level probabilities of field f among matches / non-matches and λ the
share of matches among the candidates. EM (Dempster, Laird & Rubin; Winkler 1988 for record
linkage) estimates λ, m and u from the unlabelled candidates: it needs no training data and
no hand-set weights, and each field's weight follows from how well it separates the two
classes in *this* data. EM runs on the distinct comparison vectors with their counts, so it
costs milliseconds whatever the number of pairs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

#: Lower Dice bounds of the agreement levels 0 (exact) to 4; level 5 is "below 0.6".
LEVEL_BOUNDS = (0.999, 0.9, 0.8, 0.7, 0.6)
LEVELS = len(LEVEL_BOUNDS) + 1
#: The state of a field whose value is missing on either side.
MISSING_LEVEL = LEVELS
_PSEUDO = 1e-6


def agreement_levels(dice: NDArray[np.float32]) -> NDArray[np.int8]:
    """Return the agreement level of each Dice value (``MISSING_LEVEL`` for ``NaN``).

    Parameters
    ----------
    dice : numpy.ndarray
        ``(pairs, fields)`` Dice similarities.

    Returns
    -------
    numpy.ndarray
        ``int8`` levels of the same shape: 0 = exact ... ``LEVELS - 1`` = disagree.
    """
    levels = np.full(dice.shape, LEVELS - 1, dtype=np.int8)
    for level in reversed(range(len(LEVEL_BOUNDS))):
        levels[dice >= LEVEL_BOUNDS[level]] = level
    levels[np.isnan(dice)] = MISSING_LEVEL
    return levels


@dataclass(frozen=True, slots=True)
class FellegiSunterModel:
    """A fitted model: match share λ and per-field level probabilities.

    Parameters
    ----------
    fields : tuple of str
        Field names, in column order.
    prior : float
        λ, the share of matches among the candidate pairs it was fitted on.
    m : numpy.ndarray
        ``(fields, LEVELS)``: P(level | match).
    u : numpy.ndarray
        ``(fields, LEVELS)``: P(level | non-match).
    iterations : int
        EM iterations run.
    """

    fields: tuple[str, ...]
    prior: float
    m: NDArray[np.float64]
    u: NDArray[np.float64]
    iterations: int

    @property
    def weights(self) -> NDArray[np.float64]:
        """``(fields, LEVELS)`` match weights log2(m / u), in bits."""
        return np.asarray(np.log2(self.m / self.u))

    def log_odds(self, levels: NDArray[np.int8]) -> NDArray[np.float64]:
        """Return the log2 posterior odds of a match for ``(pairs, fields)`` levels."""
        weights = np.concatenate([self.weights, np.zeros((len(self.fields), 1))], axis=1)
        per_field = weights[np.arange(len(self.fields)), levels.astype(np.int64)]
        prior = np.log2(self.prior / (1.0 - self.prior))
        return np.asarray(prior + per_field.sum(axis=1))

    def match_probability(self, levels: NDArray[np.int8]) -> NDArray[np.float64]:
        """Return P(match | γ) for ``(pairs, fields)`` levels."""
        return np.asarray(1.0 / (1.0 + np.exp2(-self.log_odds(levels))))


def _initial_m(fields: int) -> NDArray[np.float64]:
    """Return the start of m: matches mostly agree, a steeply falling profile per field."""
    start = np.array([0.7, 0.1, 0.07, 0.05, 0.04, 0.04])
    return np.tile(start, (fields, 1))


def _level_shares(
    patterns: NDArray[np.int8], weights: NDArray[np.float64], fields: int
) -> NDArray[np.float64]:
    """Weighted level frequencies per field, ignoring missing states."""
    shares = np.full((fields, LEVELS), _PSEUDO)
    for field in range(fields):
        known = patterns[:, field] != MISSING_LEVEL
        np.add.at(shares[field], patterns[known, field], weights[known])
    return np.asarray(shares / shares.sum(axis=1, keepdims=True))


def _patterns(levels: NDArray[np.int8]) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    """Distinct comparison vectors and their counts."""
    codes = np.zeros(len(levels), dtype=np.int64)
    for column in range(levels.shape[1]):
        codes = codes * (LEVELS + 1) + levels[:, column]
    unique_codes, counts = np.unique(codes, return_counts=True)
    patterns = np.empty((len(unique_codes), levels.shape[1]), dtype=np.int8)
    rest = unique_codes.copy()
    for column in reversed(range(levels.shape[1])):
        patterns[:, column] = rest % (LEVELS + 1)
        rest //= LEVELS + 1
    return patterns, counts.astype(np.float64)


@dataclass(frozen=True, slots=True)
class RandomPairLevels:
    """Level frequencies among pairs drawn uniformly from all pairs.

    Parameters
    ----------
    shares : numpy.ndarray
        ``(fields, LEVELS)`` frequencies f = λ·m + (1 − λ)·u (a mixture: random pairs
        include matches at rate λ, which matters when the files overlap heavily).
    floor : numpy.ndarray
        ``(fields, 1)`` smallest u used per field: half a pair among the sample, so a level
        never seen among random pairs keeps a finite weight.
    """

    shares: NDArray[np.float64]
    floor: NDArray[np.float64]

    def u_given(self, m: NDArray[np.float64], prior: float) -> NDArray[np.float64]:
        """Return u = (f − λ·m) / (1 − λ), floored and renormalised."""
        u = np.maximum((self.shares - prior * m) / (1.0 - prior), self.floor)
        return np.asarray(u / u.sum(axis=1, keepdims=True))


def random_pair_levels(levels: NDArray[np.int8]) -> RandomPairLevels:
    """Summarise the levels of *random* pairs for estimating u.

    Parameters
    ----------
    levels : numpy.ndarray
        ``(pairs, fields)`` levels of pairs drawn uniformly from all pairs.

    Returns
    -------
    RandomPairLevels
        Per-field level frequencies (missing states excluded) and floors.
    """
    counts = np.zeros((levels.shape[1], LEVELS))
    for column in range(levels.shape[1]):
        known = levels[:, column] != MISSING_LEVEL
        counts[column] = np.bincount(levels[known, column], minlength=LEVELS)[:LEVELS]
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return RandomPairLevels(shares=counts / totals, floor=0.5 / totals)


def fit_fellegi_sunter(
    levels: NDArray[np.int8],
    fields: tuple[str, ...],
    *,
    random_pairs: RandomPairLevels | None = None,
    total_pairs: int | None = None,
    max_iterations: int = 500,
    tolerance: float = 1e-7,
) -> FellegiSunterModel:
    """Fit the model by EM on the candidate pairs' agreement levels.

    Two modes:

    - ``random_pairs`` given (levels of random pairs, ``random_pair_levels``) with
      ``total_pairs`` (all pairs, |A|·|B|): EM fits m and λ over *all* pairs, and u is what
      the random pairs show once the matches among them are taken out, u = (f − λ·m) /
      (1 − λ); pairs that blocking left out count as non-matches. This is the default of
      ``run_linkage``: blocking picks candidates *because* they agree on some fields, so
      the candidates' own non-matches agree far more often than u, and a u fitted on them
      under-weights exact agreement (measured in docs/identity-linkage.md).
    - ``random_pairs`` is ``None``: plain EM on the candidates for λ, m and u (Winkler
      1988).

    Parameters
    ----------
    levels : numpy.ndarray
        ``(pairs, fields)`` agreement levels of the candidate pairs.
    fields : tuple of str
        Field names.
    random_pairs : RandomPairLevels or None
        Level frequencies among random pairs, or ``None`` to fit u on the candidates.
    total_pairs : int or None
        Number of pairs λ is a share of (all pairs with ``random_pairs``; default: the
        number of candidates).
    max_iterations : int
        Upper bound on EM iterations.
    tolerance : float
        Stop when no parameter moves by more than this.

    Returns
    -------
    FellegiSunterModel
        The fitted model (its ``prior`` is λ over ``total_pairs``).

    Raises
    ------
    ValueError
        If there are no pairs, shapes do not match, or ``total_pairs`` is smaller than the
        number of candidates.
    """
    if levels.ndim != 2 or not len(levels) or levels.shape[1] != len(fields):
        raise ValueError("levels must be a non-empty (pairs, fields) array matching fields")
    total = len(levels) if total_pairs is None else total_pairs
    if total < len(levels):
        raise ValueError("total_pairs must be at least the number of candidate pairs")
    count = len(fields)
    patterns, weights_all = _patterns(levels)
    m = _initial_m(count)
    if random_pairs is None:
        prior = 0.01
        current_u = _level_shares(patterns, weights_all, count)
    else:
        prior = min(0.5, 0.1 * len(levels) / total)
        current_u = random_pairs.u_given(m, 0.0)
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        model = FellegiSunterModel(fields, prior, m, current_u, iteration)
        matched = weights_all * model.match_probability(patterns)
        new_prior = float(np.clip(matched.sum() / total, 1e-12, 1 - 1e-9))
        new_m = _level_shares(patterns, matched, count)
        if random_pairs is None:
            new_u = _level_shares(patterns, weights_all - matched, count)
        else:
            new_u = random_pairs.u_given(new_m, new_prior)
        delta = max(
            abs(new_prior - prior) / max(prior, 1e-12),
            np.abs(new_m - m).max(),
            np.abs(new_u - current_u).max(),
        )
        prior, m, current_u = new_prior, new_m, new_u
        if delta < tolerance:
            break
    logger.info("EM: %d patterns, %d iterations, prior %.3g", len(patterns), iteration, prior)
    return FellegiSunterModel(fields, prior, m, current_u, iteration)
