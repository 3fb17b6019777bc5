"""Malicious edges in a simulation: what one compromised device or broken app build sends.

A simulation with ``--malicious-edges K --attack A`` picks ``K`` edges (seeded) that run the
real ClientApp but tamper with what leaves them, through a train-handler mod placed outside
the edge's own mods (``client.build_client_app(train_mods=...)``), so the server sees
exactly what a compromised edge would send:

- ``count-inflation``: reports ``num-examples`` = 100,000 and an arbitrary update (a seeded
  random direction, ``ATTACK_FACTOR`` times the honest update's norm);
- ``scale``: sends its honest update multiplied by ``ATTACK_FACTOR`` (model boosting);
- ``sign-flip``: sends its honest update multiplied by ``-ATTACK_FACTOR``;
- ``label-flip``: trains honestly on flipped labels (``y -> 1 - y`` for two classes, the
  next class for more), so its update is a plausible one pointing the wrong way.

The tampering acts on the update relative to the global model the round sent, after any
central clipping the edge did (an attacker does not clip).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp.typing import ClientAppCallable, Mod
from torch.utils.data import TensorDataset

from models import METRIC_NUM_EXAMPLES
from models.learners import Learner

from .errors import SimulationError

#: The attacks ``fedprofile simulate --attack`` plays.
Attack = Literal["count-inflation", "scale", "sign-flip", "label-flip"]
ATTACKS: tuple[str, ...] = get_args(Attack)
#: How much a scaling or sign-flipping attacker boosts its update.
ATTACK_FACTOR = 10.0
#: The example count an inflating attacker reports.
INFLATED_COUNT = 100_000


@dataclass(frozen=True)
class AttackPlan:
    """Which edges attack, and how.

    Parameters
    ----------
    attack : Attack
        What the malicious edges do.
    edges : tuple[int, ...]
        Partition ids of the malicious edges.
    seed : int
        Seed of the arbitrary updates (count inflation).
    """

    attack: Attack
    edges: tuple[int, ...]
    seed: int = 0


def pick_edges(option: str, count: int, *, edges: int, seed: int) -> tuple[int, ...]:
    """Return ``count`` of ``edges`` partition ids chosen by ``seed`` (a minority).

    Raises
    ------
    SimulationError
        If ``count`` is not at least 1 and below half of ``edges`` (``option`` names it).
    """
    if count < 1 or 2 * count >= edges:
        raise SimulationError(
            f"{option} must be at least 1 and fewer than half of --edges ({edges}); got {count}"
        )
    return tuple(sorted(random.Random(f"{option}:{seed}").sample(range(edges), count)))


def partition_of(context: Context) -> int:
    """Return the node's ``partition-id`` (-1 when it has none)."""
    return int(context.node_config.get("partition-id", -1))


def round_of(msg: Message) -> int:
    """Return the ``server-round`` a train message's config names (0 when none)."""
    config = next(iter(msg.content.config_records.values()), None)
    return int(config.get("server-round", 0)) if config is not None else 0  # type: ignore[arg-type]


def plan_attack(attack: str, *, malicious: int, edges: int, seed: int) -> AttackPlan:
    """Return the attack plan: ``malicious`` of ``edges`` partitions, chosen by ``seed``.

    Raises
    ------
    SimulationError
        If the attack is unknown or ``malicious`` is not below half of ``edges``.
    """
    if attack not in ATTACKS:
        raise SimulationError(f"unknown --attack {attack!r}; choose one of {', '.join(ATTACKS)}")
    chosen = pick_edges("--malicious-edges", malicious, edges=edges, seed=seed)
    return AttackPlan(attack=attack, edges=chosen, seed=seed)  # type: ignore[arg-type]


def flip_labels(dataset: TensorDataset, *, columns: Sequence[int], classes: int) -> TensorDataset:
    """Return ``dataset`` with the main label flipped in every one of ``columns``.

    Two classes: ``y -> 1 - y``; more: ``y -> (y + 1) mod classes``. Ignored targets
    (negative, e.g. a head without a label) stay as they are.
    """
    tensors = list(dataset.tensors)
    for column in columns:
        labels = tensors[column]
        known = labels >= 0
        flipped = (1 - labels) if classes <= 2 else (labels + 1) % classes
        tensors[column] = torch.where(known, flipped.to(labels.dtype), labels)
    return TensorDataset(*tensors)


def poisoned_partitions(
    partitions: Sequence[TensorDataset], plan: AttackPlan | None, learner: Learner
) -> list[TensorDataset]:
    """Return the partitions, with the malicious edges' labels flipped for ``label-flip``."""
    parts = list(partitions)
    if plan is None or plan.attack != "label-flip":
        return parts
    for index in plan.edges:
        parts[index] = flip_labels(
            parts[index], columns=learner.label_columns, classes=learner.num_classes
        )
    return parts


def _tamper(
    plan: AttackPlan, sent: ArrayRecord, reply: RecordDict, partition: int, server_round: int
) -> None:
    """Replace the reply's update (and count) by the attack's, in place."""
    array_key = next(iter(reply.array_records))
    arrays = reply.array_records[array_key]
    base = {k: v.numpy().astype(np.float64) for k, v in sent.items()}
    delta = {k: arrays[k].numpy().astype(np.float64) - base[k] for k in base}
    if plan.attack == "count-inflation":
        norm = math.sqrt(sum(float(np.sum(d * d)) for d in delta.values())) or 1.0
        rng = np.random.default_rng([plan.seed, partition, server_round])
        noise = {k: rng.standard_normal(d.shape) for k, d in delta.items()}
        noise_norm = math.sqrt(sum(float(np.sum(n * n)) for n in noise.values())) or 1.0
        delta = {k: n * (ATTACK_FACTOR * norm / noise_norm) for k, n in noise.items()}
        metric_key = next(iter(reply.metric_records))
        metrics = MetricRecord(dict(reply.metric_records[metric_key]))
        metrics[METRIC_NUM_EXAMPLES] = INFLATED_COUNT
        reply[metric_key] = metrics
    elif plan.attack == "scale":
        delta = {k: ATTACK_FACTOR * d for k, d in delta.items()}
    elif plan.attack == "sign-flip":
        delta = {k: -ATTACK_FACTOR * d for k, d in delta.items()}
    dtype = {k: arrays[k].numpy().dtype for k in base}
    reply[array_key] = ArrayRecord(
        {k: Array(np.ascontiguousarray((base[k] + d).astype(dtype[k]))) for k, d in delta.items()}
    )


def attack_mod(plan: AttackPlan) -> Mod:
    """Return the train-handler mod that makes the plan's edges send the attack's update."""
    malicious = frozenset(plan.edges)

    def mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        partition = partition_of(context)
        if partition not in malicious or msg.metadata.message_type != MessageType.TRAIN:
            return call_next(msg, context)
        sent = ArrayRecord({k: Array(v.numpy().copy()) for k, v in _arrays(msg.content).items()})
        server_round = round_of(msg)
        reply = call_next(msg, context)
        if reply.has_error() or plan.attack == "label-flip":
            return reply
        _tamper(plan, sent, reply.content, partition, server_round)
        return reply

    return mod


def _arrays(content: RecordDict) -> ArrayRecord:
    return next(iter(content.array_records.values()))


__all__ = [
    "ATTACKS",
    "ATTACK_FACTOR",
    "INFLATED_COUNT",
    "Attack",
    "AttackPlan",
    "attack_mod",
    "flip_labels",
    "plan_attack",
    "poisoned_partitions",
]
