"""Privacy units, the stratified held-out split and partitioning across edges."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.errors import SimulationError
from simulations.split import holdout_split, make_units, partition_units


def test_units_keep_a_group_together_with_its_majority_label() -> None:
    labels = np.array([0, 1, 1, 0, 2])
    units = make_units(labels, ["u1", "u2", "u2", "u1", "u3"])
    assert units.grouped and len(units) == 3
    assert units.labels.tolist() == [0, 1, 2]
    assert units.examples(np.array([1, 2])).tolist() == [1, 2, 4]


def test_holdout_split_is_stratified_disjoint_and_seeded() -> None:
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train, test = holdout_split(labels, test_fraction=0.2, seed=1)
    assert set(train).isdisjoint(test) and len(train) + len(test) == 100
    assert np.bincount(labels[test]).tolist() == [10, 6, 4]
    again = holdout_split(labels, test_fraction=0.2, seed=1)
    other = holdout_split(labels, test_fraction=0.2, seed=2)
    assert np.array_equal(test, again[1]) and not np.array_equal(test, other[1])


def test_iid_partition_covers_every_unit_once() -> None:
    units = np.arange(103)
    parts = partition_units(units, labels=np.zeros(103, int), edges=5, scheme="iid", seed=0)
    assert sorted(np.concatenate(parts).tolist()) == units.tolist()
    assert {len(p) for p in parts} <= {20, 21}


def test_dirichlet_small_alpha_skews_labels_per_edge() -> None:
    labels = np.repeat([0, 1, 2, 3], 250)
    units = np.arange(1000)
    skewed = partition_units(units, labels=labels, edges=4, scheme="dirichlet", seed=0, alpha=0.1)
    even = partition_units(units, labels=labels, edges=4, scheme="dirichlet", seed=0, alpha=100.0)
    assert sorted(np.concatenate(skewed).tolist()) == units.tolist()
    assert all(len(p) > 0 for p in skewed)

    def top_share(parts: list[np.ndarray]) -> float:
        return float(np.mean([np.bincount(labels[p], minlength=4).max() / len(p) for p in parts]))

    assert top_share(skewed) > 0.6 > top_share(even)


def test_column_partition_one_edge_per_value() -> None:
    columns = ["web", "app", "web", "sms", "app", "sms"]
    parts = partition_units(
        np.arange(6), labels=np.zeros(6, int), edges=3, scheme="column", seed=0, columns=columns
    )
    assert [p.tolist() for p in parts] == [[1, 4], [3, 5], [0, 2]]
    with pytest.raises(SimulationError, match="pass --edges 3"):
        partition_units(
            np.arange(6), labels=np.zeros(6, int), edges=2, scheme="column", seed=0, columns=columns
        )


def test_too_few_units_for_the_edges_is_refused() -> None:
    with pytest.raises(SimulationError, match="cannot fill 5 edges"):
        partition_units(np.arange(3), labels=np.zeros(3, int), edges=5, scheme="iid", seed=0)
