"""Scoring persons against the generator's truth: pairwise precision and recall."""

from __future__ import annotations

import math

import pytest

from simulations.linkage_truth import score_linkage, true_clusters
from simulations.synthetic import PopulationConfig, identity_of, make_users


def test_score_counts_pairs_among_held_pseudonyms_only() -> None:
    truth = [{"a", "b", "c"}, {"d", "e"}, {"f"}]
    persons = {"pn_1": ["a", "b"], "pn_2": ["c", "d"]}
    score = score_linkage(persons, truth, held={"a", "b", "c", "d", "e", "f"})
    # true pairs ab ac bc de; linked ab cd: one right of two linked, one found of four.
    assert score.precision == pytest.approx(0.5) and score.recall == pytest.approx(0.25)
    assert (score.true_pairs, score.linked_pairs, score.persons) == (4, 2, 2)
    unheld = score_linkage(persons, truth, held={"a", "b"})
    assert unheld.precision == 1.0 and unheld.recall == 1.0 and unheld.true_pairs == 1
    empty = score_linkage({}, [{"x"}], held={"x"})
    assert math.isnan(empty.precision) and math.isnan(empty.recall)


def test_true_clusters_follow_the_generators_devices() -> None:
    population = PopulationConfig(users=40, days=10, seed=3, cross_device_share=0.5)
    clusters = true_clusters(population, lambda ref: "|".join(sorted(ref.values())))
    users = make_users(population)
    assert len(clusters) == len(users)
    for user, cluster in zip(users, clusters, strict=True):
        devices = sum(len(r) for r in identity_of(user, population).devices.values())
        assert 1 <= len(cluster) <= devices + 1
    assert any(len(c) > 2 for c in clusters)  # cross-device users have several pseudonyms
