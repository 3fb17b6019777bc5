"""Score the server's persons against the synthetic population's cross-device truth.

The generator knows every device and account each user has on each channel
(``simulations.identities``); with the tenant key the simulation can compute the pseudonym
each of them gets at an edge. Two pseudonyms the server holds are a *true pair* when they
belong to one user, and a *linked pair* when the server put them in one person. Precision
and recall over pairs are computed with scikit-learn on the pairs of pseudonyms that share
a user or a person (every other pair is a true negative and changes neither figure).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations

from sklearn.metrics import precision_score, recall_score

from .synthetic import PopulationConfig, identity_of, make_users

#: What an edge makes of a ``customer`` object (``None``: refused).
PseudonymOf = Callable[[dict[str, str]], str | None]


@dataclass(frozen=True)
class LinkageScore:
    """Pairwise quality of the server's persons.

    Parameters
    ----------
    precision, recall : float
        Over pairs of pseudonyms the server holds (``nan`` when there is nothing to score).
    true_pairs, linked_pairs : int
        Same-user pairs among held pseudonyms; pairs the server linked.
    persons : int
        Persons of two or more pseudonyms on the server.
    pseudonyms_linked : int
        Pseudonyms in those persons.
    """

    precision: float
    recall: float
    true_pairs: int
    linked_pairs: int
    persons: int
    pseudonyms_linked: int

    def to_dict(self) -> dict[str, float | int]:
        """Return the score as JSON-ready data (figures rounded to 4 places)."""
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "true_pairs": self.true_pairs,
            "linked_pairs": self.linked_pairs,
            "persons": self.persons,
            "pseudonyms_linked": self.pseudonyms_linked,
        }


def true_clusters(population: PopulationConfig, pseudonym_of: PseudonymOf) -> list[set[str]]:
    """Return each user's pseudonyms over every channel and device (the generator's truth).

    Parameters
    ----------
    population : PopulationConfig
        The population's configuration (it fixes users and identities).
    pseudonym_of : PseudonymOf
        The edges' pseudonymisation under the tenant key.

    Returns
    -------
    list[set[str]]
        One set per user (the phone's pseudonym included: desk and SMS always know it).
    """
    clusters = []
    for user in make_users(population):
        identity = identity_of(user, population)
        found = {pseudonym_of({"phone": user.phone})}
        for channel, refs in identity.devices.items():
            for device in range(len(refs)):
                found.add(pseudonym_of(identity.customer(channel, device)))
        clusters.append({p for p in found if p is not None})
    return clusters


def _pairs(groups: Iterable[Collection[str]], held: Collection[str]) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for group in groups:
        members = sorted(p for p in group if p in held)
        pairs.update(combinations(members, 2))
    return pairs


def score_linkage(
    persons: Mapping[str, Collection[str]],
    truth: Iterable[Collection[str]],
    held: Collection[str],
) -> LinkageScore:
    """Score persons (person id -> pseudonyms) against true clusters, on held pseudonyms.

    Parameters
    ----------
    persons : Mapping[str, Collection[str]]
        The server's persons.
    truth : Iterable[Collection[str]]
        The true clusters (:func:`true_clusters`).
    held : Collection[str]
        Pseudonyms the server holds (only those can be linked).

    Returns
    -------
    LinkageScore
        Pairwise precision and recall, and counts.
    """
    held_set = set(held)
    true_pairs = _pairs(truth, held_set)
    linked_pairs = _pairs(persons.values(), held_set)
    candidates = sorted(true_pairs | linked_pairs)
    actual = [pair in true_pairs for pair in candidates]
    predicted = [pair in linked_pairs for pair in candidates]
    nan = float("nan")
    return LinkageScore(
        precision=float(precision_score(actual, predicted, zero_division=nan))
        if candidates
        else nan,
        recall=float(recall_score(actual, predicted, zero_division=nan)) if candidates else nan,
        true_pairs=len(true_pairs),
        linked_pairs=len(linked_pairs),
        persons=sum(1 for members in persons.values() if len(members) > 1),
        pseudonyms_linked=sum(len(m) for m in persons.values() if len(m) > 1),
    )
