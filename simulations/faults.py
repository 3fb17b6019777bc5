"""Broken edges in a simulation: a source that breaks for some rounds, then is repaired.

``fedprofile simulate --broken-edges K --fault F`` picks ``K`` edges (seeded) whose data
breaks from round 2 and is repaired (re-ingested from the source) in the last round, so the
report shows when each was flagged, what aggregation did, and that the flag clears:

- ``schema-break``: half of the features arrive constant (a renamed or dropped source field
  filled with its default; for text, every message arrives empty);
- ``empty-export``: the export holds nothing (the edge answers the round with "no
  examples");
- ``drifted-population``: the edge's examples are resampled so that nine in ten come from
  one class, and behaviour features arrive in another unit (× 100), as when an export mixes
  in another population.

The fault acts on the in-memory partition the real ClientApp trains on
(``client.PartitionSource``), through a train-handler mod that marks, per round, whether the
node's source is broken (``context.state``), so the edge's own data-quality check and the
server's policy see exactly what a broken export would give them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, get_args

import numpy as np
import torch
from flwr.app import ConfigRecord, Context, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable, Mod
from torch.utils.data import TensorDataset

from client import PartitionSource
from client.errors import LearningDataError
from client.learning.source import EdgeSession, LearningData
from models import RunConfig
from models.learners import Learner

from .attacks import partition_of, pick_edges, round_of
from .errors import SimulationError

#: The faults ``fedprofile simulate --fault`` plays.
Fault = Literal["schema-break", "empty-export", "drifted-population"]
FAULTS: tuple[str, ...] = get_args(Fault)
#: ``context.state`` record telling the source whether this round's export is broken.
FAULT_STATE = "simulated-fault"
#: First round a broken edge's data is broken.
FIRST_BROKEN_ROUND = 2


@dataclass(frozen=True)
class FaultPlan:
    """Which edges break, how, and for which rounds.

    Parameters
    ----------
    fault : Fault
        What goes wrong.
    edges : tuple[int, ...]
        Partition ids of the broken edges.
    first_round, last_round : int
        The rounds (inclusive) the data is broken; repaired from ``last_round + 1``.
    """

    fault: Fault
    edges: tuple[int, ...]
    first_round: int
    last_round: int

    def broken(self, partition: int, server_round: int) -> bool:
        """Whether ``partition``'s export is broken in ``server_round``."""
        return partition in self.edges and self.first_round <= server_round <= self.last_round


def plan_fault(fault: str, *, broken: int, edges: int, rounds: int, seed: int) -> FaultPlan:
    """Return the fault plan: ``broken`` of ``edges`` break from round 2 until round R − 1.

    Raises
    ------
    SimulationError
        If the fault is unknown, ``broken`` is not below half of ``edges``, or there are
        fewer than 3 rounds (healthy, broken, repaired).
    """
    if fault not in FAULTS:
        raise SimulationError(f"unknown --fault {fault!r}; choose one of {', '.join(FAULTS)}")
    chosen = pick_edges("--broken-edges", broken, edges=edges, seed=seed)
    if rounds < 3:
        raise SimulationError(
            "--broken-edges needs --rounds 3 or more: a healthy round, broken rounds and a "
            "repaired last round"
        )
    return FaultPlan(fault, chosen, FIRST_BROKEN_ROUND, rounds - 1)  # type: ignore[arg-type]


def broken_partition(
    data: TensorDataset, fault: Fault, learner: Learner, seed: int
) -> TensorDataset:
    """Return what a ``fault`` export of ``data`` gives the edge.

    Raises
    ------
    ValueError
        For ``empty-export`` (there is no dataset: the source refuses instead).
    """
    tensors = list(data.tensors)
    if fault == "schema-break":
        if learner.name == "behaviour":
            features = tensors[0].clone()
            features[:, : max(features.shape[1] // 2, 1)] = 0.0
            tensors[0] = features
        else:
            tensors[1] = torch.zeros_like(tensors[1])
        return TensorDataset(*tensors)
    if fault == "drifted-population":
        labels = tensors[learner.label_columns[-1]].numpy()
        rng = np.random.default_rng(seed)
        majority = labels == 0
        rest = ~majority
        share = np.where(majority, 0.9 / max(int(majority.sum()), 1), 0.1 / max(int(rest.sum()), 1))
        index = torch.as_tensor(rng.choice(len(labels), size=len(labels), p=share / share.sum()))
        tensors = [t[index] for t in tensors]
        if learner.name == "behaviour":
            tensors[0] = tensors[0] * 100.0
        return TensorDataset(*tensors)
    raise ValueError("an empty export has no dataset")


class _BrokenSession:
    """A partition session whose export is broken this round (delegates the rest)."""

    def __init__(self, inner: EdgeSession, fault: Fault, learner: Learner, seed: int) -> None:
        self._inner = inner
        self._fault = fault
        self._learner = learner
        self._seed = seed

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def data(self, *, config: RunConfig, at: datetime) -> LearningData:
        """Return the broken export of the partition (or refuse an empty one)."""
        healthy = self._inner.data(config=config, at=at)
        if self._fault == "empty-export":
            raise LearningDataError("the export holds no examples this round")
        train = broken_partition(healthy.train, self._fault, self._learner, self._seed)
        return replace(healthy, train=train)


class FaultySource:
    """``PartitionSource`` whose planned partitions are broken in the planned rounds.

    Parameters
    ----------
    inner : PartitionSource
        The healthy partitions.
    plan : FaultPlan
        Which edges break and when.
    seed : int
        Seed of the drifted resampling.
    """

    def __init__(self, inner: PartitionSource, plan: FaultPlan, *, seed: int = 0) -> None:
        self.inner = inner
        self.plan = plan
        self.seed = seed

    @contextmanager
    def open(self, context: Context, config: RunConfig) -> Iterator[EdgeSession]:
        """Yield the node's session, broken when this round's export is."""
        with self.inner.open(context, config) as session:
            record = context.state.config_records.get(FAULT_STATE)
            broken = record is not None and bool(record.get("broken", False))
            if not broken:
                yield session
                return
            partition = partition_of(context)
            yield _BrokenSession(  # type: ignore[misc]
                session, self.plan.fault, self.inner.learner, self.seed * 7919 + partition
            )

    def mod(self) -> Mod:
        """Return the train-handler mod that marks each round broken or repaired."""

        def mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
            if msg.metadata.message_type == MessageType.TRAIN:
                broken = self.plan.broken(partition_of(context), round_of(msg))
                context.state[FAULT_STATE] = ConfigRecord({"broken": broken})
            return call_next(msg, context)

        return mod


def broken_rounds(plan: FaultPlan) -> list[int]:
    """Return the rounds in which the plan's edges are broken."""
    return list(range(plan.first_round, plan.last_round + 1))


__all__: Sequence[str] = [
    "FAULTS",
    "Fault",
    "FaultPlan",
    "FaultySource",
    "broken_partition",
    "broken_rounds",
    "plan_fault",
]
