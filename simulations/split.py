"""Privacy units and the global held-out test split, stratified and seeded.

A *unit* is what differential privacy protects and what partitioning moves between edges:
one example, or, when the dataset names a group (user / customer) field, all of one
group's examples. ``make_units`` builds them; ``holdout_split`` holds out a stratified share of
units (stratified by label, a group counting with its most frequent label), so every
setting of a simulation is scored on the same examples and no held-out unit is trained on;
``partition_units`` spreads the training units over edges: IID, label skew (Dirichlet α)
or one edge per value of a column. A unit never straddles two edges.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import SimulationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Units:
    """Privacy units of a dataset.

    Parameters
    ----------
    members : tuple[np.ndarray, ...]
        Example indices of each unit (one index per unit without groups).
    labels : np.ndarray
        ``(units,)`` the label of each unit (a group's most frequent label, smallest index
        on ties).
    grouped : bool
        Whether units are groups (user-level DP) or single examples (example-level).
    """

    members: tuple[np.ndarray, ...]
    labels: np.ndarray
    grouped: bool

    def __len__(self) -> int:
        return len(self.members)

    def examples(self, units: np.ndarray) -> np.ndarray:
        """Return the sorted example indices of the given units."""
        if len(units) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate([self.members[int(u)] for u in units]))


def make_units(labels: np.ndarray, groups: Sequence[str] | None) -> Units:
    """Group examples into privacy units.

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` example labels.
    groups : Sequence[str] or None
        Each example's group; ``None`` makes every example its own unit.

    Returns
    -------
    Units
        Units in order of first appearance of their group.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if groups is None:
        members = tuple(np.array([i], dtype=np.int64) for i in range(len(labels)))
        return Units(members=members, labels=labels.copy(), grouped=False)
    order: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        order.setdefault(group, []).append(index)
    members = tuple(np.array(m, dtype=np.int64) for m in order.values())
    unit_labels = np.array([int(np.bincount(labels[m]).argmax()) for m in members], dtype=np.int64)
    return Units(members=members, labels=unit_labels, grouped=True)


def holdout_split(
    labels: np.ndarray, *, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split units into training and held-out units, stratified by label.

    Parameters
    ----------
    labels : np.ndarray
        ``(units,)`` unit labels.
    test_fraction : float
        Share of each class held out, in (0, 1); each class with at least two units keeps
        at least one on each side.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        Sorted training and held-out unit indices.

    Raises
    ------
    SimulationError
        If ``test_fraction`` is out of range or a side would be empty.
    """
    if not 0.0 < test_fraction < 1.0:
        raise SimulationError(f"test fraction must be within (0, 1), got {test_fraction:g}")
    rng = np.random.default_rng([seed, 7919])
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        held = int(round(test_fraction * len(members)))
        if len(members) >= 2:
            held = min(max(held, 1), len(members) - 1)
        test.append(members[:held])
        train.append(members[held:])
    train_units = np.sort(np.concatenate(train)) if train else np.zeros(0, dtype=np.int64)
    test_units = np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=np.int64)
    if len(train_units) == 0 or len(test_units) == 0:
        raise SimulationError(
            f"{len(labels)} units are too few for a training and a held-out split"
        )
    return train_units, test_units


#: How training units are spread over edges (``--partition``).
PartitionScheme = Literal["iid", "dirichlet", "column"]


def partition_units(
    units: np.ndarray,
    *,
    labels: np.ndarray,
    edges: int,
    scheme: PartitionScheme,
    seed: int,
    alpha: float = 0.5,
    columns: Sequence[str] | None = None,
) -> list[np.ndarray]:
    """Spread training units over ``edges`` edges; every edge gets at least one.

    Parameters
    ----------
    units : np.ndarray
        Indices of the training units.
    labels : np.ndarray
        ``(all units,)`` unit labels (indexed by the values of ``units``).
    edges : int
        Number of edges (>= 1).
    scheme : {"iid", "dirichlet", "column"}
        ``iid``: a seeded shuffle cut into near-equal parts. ``dirichlet``: label skew, each
        class's units split by proportions drawn from Dirichlet(α) per class. ``column``:
        one edge per distinct ``columns`` value (sorted); ``edges`` must equal their count.
    seed : int
        Seed of the shuffle and the Dirichlet draws.
    alpha : float
        Concentration of the label skew (> 0; small = each edge sees few classes).
    columns : Sequence[str] or None
        ``(all units,)`` partition-column value of each unit (``column`` scheme).

    Returns
    -------
    list[np.ndarray]
        Sorted unit indices of each edge.

    Raises
    ------
    SimulationError
        If there are fewer units than edges, ``alpha`` <= 0, the column is missing or its
        values do not make ``edges`` non-empty edges.
    """
    units = np.asarray(units, dtype=np.int64)
    if edges < 1:
        raise SimulationError("edges must be at least 1")
    if len(units) < edges:
        raise SimulationError(f"{len(units)} training units cannot fill {edges} edges")
    rng = np.random.default_rng([seed, 104729])
    if scheme == "iid":
        parts = np.array_split(rng.permutation(units), edges)
    elif scheme == "dirichlet":
        if alpha <= 0.0:
            raise SimulationError(f"dirichlet alpha must be > 0, got {alpha:g}")
        parts = _dirichlet_parts(units, labels=labels, edges=edges, alpha=alpha, rng=rng)
    elif scheme == "column":
        if columns is None:
            raise SimulationError("--partition column needs --partition-field")
        values = sorted({columns[int(u)] for u in units})
        if len(values) != edges:
            raise SimulationError(
                f"the partition field has {len(values)} distinct values among training "
                f"examples; pass --edges {len(values)}"
            )
        index = {v: i for i, v in enumerate(values)}
        buckets: list[list[int]] = [[] for _ in values]
        for u in units:
            buckets[index[columns[int(u)]]].append(int(u))
        parts = [np.array(b, dtype=np.int64) for b in buckets]
    else:
        raise SimulationError(f"unknown partition scheme {scheme!r}; use iid, dirichlet or column")
    return [np.sort(p) for p in parts]


def _dirichlet_parts(
    units: np.ndarray, *, labels: np.ndarray, edges: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Label-skewed split; an edge left empty takes one unit from the largest edge."""
    buckets: list[list[int]] = [[] for _ in range(edges)]
    unit_labels = labels[units]
    for cls in np.unique(unit_labels):
        members = rng.permutation(units[unit_labels == cls])
        shares = rng.dirichlet(np.full(edges, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(np.int64)
        for edge, part in enumerate(np.split(members, cuts)):
            buckets[edge].extend(int(u) for u in part)
    for edge in range(edges):
        if not buckets[edge]:
            donor = max(range(edges), key=lambda e: len(buckets[e]))
            buckets[edge].append(buckets[donor].pop())
    return [np.array(b, dtype=np.int64) for b in buckets]
