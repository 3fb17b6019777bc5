"""From match probabilities to decisions: one-to-one ``match`` links and a ``review`` band.

Two files of customers hold each person at most once, so a record links to at most one
record of the other side. Pairs at or above the threshold are taken greedily, most probable
first; a pair whose record is already taken is not a match, it goes to review (an officer
sees the competing candidate). Pairs in the review band ``[review_floor, threshold)`` are
reviewed too, unless one of their records already has a match (a weaker alternative to a
confident link is not worth an officer's time). Everything else is not written.

Greedy assignment is what anonlink's solver does; it is optimal when each record has one
clear best candidate, and differs from an optimal (Hungarian) assignment only on chains of
near-ties, which land in review anyway.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class LinkDecision(StrEnum):
    """What happens to a scored pair."""

    MATCH = "match"
    REVIEW = "review"


def decide(
    ia: NDArray[np.int64],
    ib: NDArray[np.int64],
    probability: NDArray[np.float64],
    *,
    threshold: float,
    review_floor: float,
    one_to_one: bool = True,
) -> tuple[NDArray[np.int64], list[LinkDecision]]:
    """Return the pairs to write (indices into the inputs) and their decisions.

    Parameters
    ----------
    ia, ib : numpy.ndarray
        Row indices of the scored pairs in A and B.
    probability : numpy.ndarray
        P(match) of each pair.
    threshold : float
        Pairs at or above it are matches (one-to-one).
    review_floor : float
        Pairs in ``[review_floor, threshold)`` whose records are both unmatched, and pairs
        above the threshold that lost the one-to-one assignment, are for review.
    one_to_one : bool
        Two files (default). ``False`` for deduplication inside one population, where a
        person may hold several records: every pair at or above the threshold is a match
        (the identity graph joins them transitively) and every pair in the band is reviewed.

    Returns
    -------
    tuple
        Indices into the pair arrays, ordered by decreasing probability, and one decision
        per index.
    """
    order = np.argsort(-probability, kind="stable")
    order = order[probability[order] >= min(review_floor, threshold)]
    taken_a: set[int] = set()
    taken_b: set[int] = set()
    decisions: list[LinkDecision] = []
    kept: list[int] = []
    for index in order.tolist():
        if not one_to_one:
            match = probability[index] >= threshold
            decisions.append(LinkDecision.MATCH if match else LinkDecision.REVIEW)
            kept.append(index)
            continue
        a, b = int(ia[index]), int(ib[index])
        free = a not in taken_a and b not in taken_b
        if probability[index] >= threshold and free:
            taken_a.add(a)
            taken_b.add(b)
            decisions.append(LinkDecision.MATCH)
            kept.append(index)
        elif probability[index] >= threshold or free:
            decisions.append(LinkDecision.REVIEW)
            kept.append(index)
    return np.asarray(kept, dtype=np.int64), decisions
