"""Link two sets of keyed encodings: block, compare, fit Fellegi–Sunter by EM, decide.

The server runs this on what edges upload; ``fedprofile identity link`` runs it on two
files. Steps:

1. align the two sides (same key and scheme, common fields);
2. candidate pairs by blocking on keys computed from the filters (``blocking``);
3. per-field Dice similarity of each candidate, cut into agreement levels;
4. fit λ, m and u by EM on the candidates (``fellegi_sunter``) and score each pair with
   its posterior match probability;
5. ``match`` for P ≥ ``threshold`` (default 0.5: more likely a match than not, the Bayes
   decision for equal costs), one-to-one; ``review`` for ``[review_floor, threshold)`` and
   for matches that lost the one-to-one assignment.

Nothing here sees a raw value or a key: only filters, ids and counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from privacy import EncodedRecord

from .assignment import LinkDecision, decide
from .blocking import BlockingConfig, candidate_pairs
from .fellegi_sunter import (
    FellegiSunterModel,
    agreement_levels,
    fit_fellegi_sunter,
    random_pair_levels,
)
from .matrix import EncodingMatrix, aligned_matrices, encoding_matrix
from .similarity import pair_dice

logger = logging.getLogger(__name__)

#: Default match threshold on P(match | γ): more likely a match than not.
DEFAULT_THRESHOLD = 0.5
#: Default lower end of the review band: at least a one-in-ten chance of a match.
DEFAULT_REVIEW_FLOOR = 0.1
#: Random pairs drawn to estimate u (non-match level frequencies).
U_SAMPLE_PAIRS = 1_000_000
#: How u is estimated: from random pairs (default) or by EM on the candidates.
UEstimate = Literal["random_pairs", "candidates"]


@dataclass(frozen=True, slots=True)
class Link:
    """One written pair.

    Parameters
    ----------
    a_id, b_id : str
        Record ids in the two inputs.
    score : float
        P(match | comparison vector) under the fitted model, 0 to 1.
    decision : LinkDecision
        ``match`` (one-to-one) or ``review``.
    """

    a_id: str
    b_id: str
    score: float
    decision: LinkDecision


@dataclass(frozen=True, slots=True)
class LinkageResult:
    """Links with what produced them.

    Parameters
    ----------
    links : list of Link
        Matches and review pairs, most probable first.
    model : FellegiSunterModel or None
        The fitted model (``None`` when there was no candidate pair).
    candidates : int
        Candidate pairs compared after blocking.
    seconds : dict of str to float
        Wall time of each step (``blocking``, ``comparison``, ``em``, ``decision``).
    """

    links: list[Link]
    model: FellegiSunterModel | None
    candidates: int
    seconds: dict[str, float] = field(default_factory=dict)


def _as_matrix(side: Sequence[EncodedRecord] | EncodingMatrix, name: str) -> EncodingMatrix:
    """Pack records into a matrix unless they already are one."""
    return side if isinstance(side, EncodingMatrix) else encoding_matrix(side, side=name)


def _random_pair_levels(
    left: EncodingMatrix, right: EncodingMatrix, rng: np.random.Generator, *, dedupe: bool
) -> NDArray[np.int8]:
    """Agreement levels of up to ``U_SAMPLE_PAIRS`` pairs drawn uniformly (all pairs if fewer).

    With ``dedupe``, pairs of a record with itself are left out.
    """
    total = len(left) * len(right)
    if total <= U_SAMPLE_PAIRS:
        codes = np.arange(total, dtype=np.int64)
    else:
        codes = rng.integers(0, total, size=U_SAMPLE_PAIRS, dtype=np.int64)
    ia, ib = codes // len(right), codes % len(right)
    if dedupe:
        differ = np.asarray(left.ids, dtype=object)[ia] != np.asarray(right.ids, dtype=object)[ib]
        ia, ib = ia[differ], ib[differ]
    return agreement_levels(pair_dice(left, right, ia, ib))


def _dedupe_pairs(
    left: EncodingMatrix, right: EncodingMatrix, ia: NDArray[np.int64], ib: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Drop self pairs, and the mirror of pairs whose two records are both on the left."""
    left_ids = np.asarray(left.ids, dtype=object)
    right_ids = np.asarray(right.ids, dtype=object)
    a_ids, b_ids = left_ids[ia], right_ids[ib]
    on_left = np.isin(b_ids, left_ids)
    keep = (a_ids != b_ids) & (~on_left | (a_ids < b_ids))
    return ia[keep], ib[keep]


def run_linkage(
    a: Sequence[EncodedRecord] | EncodingMatrix,
    b: Sequence[EncodedRecord] | EncodingMatrix,
    *,
    threshold: float | None = None,
    review_floor: float = DEFAULT_REVIEW_FLOOR,
    blocking: BlockingConfig | None = None,
    u_estimate: UEstimate = "random_pairs",
    rng: np.random.Generator | None = None,
    dedupe: bool = False,
) -> LinkageResult:
    """Link two sides and return the links with the fitted model and timings.

    Parameters
    ----------
    a, b : Sequence[EncodedRecord] or EncodingMatrix
        The two sides, encoded under the same key and scheme.
    threshold : float or None
        Match threshold on P(match); ``None`` means ``DEFAULT_THRESHOLD`` (0.5).
    review_floor : float
        Lower end of the review band (P(match) from here up to the threshold).
    blocking : BlockingConfig or None
        Blocking parameters (default ``BlockingConfig()``).
    u_estimate : {"random_pairs", "candidates"}
        ``random_pairs`` (default): u from up to a million random pairs (less the matches
        among them), m and λ by EM over all pairs; ``candidates``: λ, m and u all by EM on
        the candidates.
    rng : numpy.random.Generator or None
        Draws the random pairs (default: seeded with 0, so a run is reproducible).
    dedupe : bool
        One population, not two files: ``a`` holds new records and ``b`` every record
        (``a``'s included), ids are pseudonyms. A record is never paired with itself, a pair
        of two new records is scored once, and decisions are not one-to-one (a person may
        hold several pseudonyms; the identity graph joins matches transitively).

    Returns
    -------
    LinkageResult
        Links, model, candidate count and step timings.

    Raises
    ------
    ValueError
        If the threshold or review floor is outside (0, 1].
    EncodingMismatchError
        If the sides were encoded under different keys or schemes, or share no field.
    """
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    if not 0.0 < threshold <= 1.0 or not 0.0 < review_floor <= 1.0:
        raise ValueError("threshold and review_floor must be probabilities in (0, 1]")
    seconds: dict[str, float] = {}
    # 1. align
    left, right = aligned_matrices(_as_matrix(a, "A"), _as_matrix(b, "B"))
    # 2. block
    clock = time.perf_counter()
    ia, ib = candidate_pairs(left, right, blocking)
    if dedupe:
        ia, ib = _dedupe_pairs(left, right, ia, ib)
    seconds["blocking"] = time.perf_counter() - clock
    if not len(ia):
        return LinkageResult(links=[], model=None, candidates=0, seconds=seconds)
    # 3. compare
    clock = time.perf_counter()
    levels = agreement_levels(pair_dice(left, right, ia, ib))
    seconds["comparison"] = time.perf_counter() - clock
    # 4. fit and score
    clock = time.perf_counter()
    if u_estimate == "random_pairs":
        rng = rng if rng is not None else np.random.default_rng(0)
        model = fit_fellegi_sunter(
            levels,
            left.fields,
            random_pairs=random_pair_levels(_random_pair_levels(left, right, rng, dedupe=dedupe)),
            total_pairs=len(left) * len(right),
        )
    else:
        model = fit_fellegi_sunter(levels, left.fields)
    probability = model.match_probability(levels)
    seconds["em"] = time.perf_counter() - clock
    # 5. decide
    clock = time.perf_counter()
    chosen, decisions = decide(
        ia, ib, probability, threshold=threshold, review_floor=review_floor, one_to_one=not dedupe
    )
    links = [
        Link(left.ids[int(ia[i])], right.ids[int(ib[i])], float(probability[i]), decision)
        for i, decision in zip(chosen.tolist(), decisions, strict=True)
    ]
    seconds["decision"] = time.perf_counter() - clock
    matches = sum(1 for link in links if link.decision is LinkDecision.MATCH)
    logger.info("linkage: %d candidates, %d matches, %d for review",
                len(ia), matches, len(links) - matches)  # fmt: skip
    return LinkageResult(links=links, model=model, candidates=len(ia), seconds=seconds)


def link_encodings(
    a: Sequence[EncodedRecord] | EncodingMatrix,
    b: Sequence[EncodedRecord] | EncodingMatrix,
    *,
    threshold: float | None = None,
    review_floor: float = DEFAULT_REVIEW_FLOOR,
    blocking: BlockingConfig | None = None,
) -> list[Link]:
    """Link two sides of keyed encodings; see ``run_linkage`` for the steps.

    Parameters
    ----------
    a, b : Sequence[EncodedRecord] or EncodingMatrix
        The two sides, encoded under the same key and scheme.
    threshold : float or None
        Match threshold on P(match); ``None`` means 0.5.
    review_floor : float
        Lower end of the review band.
    blocking : BlockingConfig or None
        Blocking parameters.

    Returns
    -------
    list of Link
        ``match`` links (each record at most once) and ``review`` pairs, most probable first.

    Raises
    ------
    ValueError
        If the threshold or review floor is outside (0, 1].
    EncodingMismatchError
        If the sides cannot be compared.
    """
    result = run_linkage(a, b, threshold=threshold, review_floor=review_floor, blocking=blocking)
    return result.links
