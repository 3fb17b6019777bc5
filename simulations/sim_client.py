"""The simulation's Flower ``ClientApp``: one virtual edge per in-memory partition.

Each virtual edge (node-config ``partition-id`` = i) holds the i-th partition of the
dataset, already masked and encoded. Its train handler does what an edge's ClientApp
does (``client/app.py``), on memory instead of an edge store: parse the run config once,
calibrate σ to ``target-epsilon`` over the run's whole plan for this edge's size
(``client.calibrated_dp_config``), train ``local-epochs`` epochs with DP-SGD
(``simulations.learners.train_epochs``), charge the edge's privacy history (kept in
``context.state`` across rounds, composed with ``privacy.compute_epsilon``) and reply
with the weights and the same metric keys the server's strategy aggregates. In
``dp-mode`` central / both the train handler sits behind ``client.central_clipping_mod``
and the edge's history is charged the server's client-level release ``(σ_c, q = 1, 1)``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from torch.utils.data import TensorDataset

from client import calibrated_dp_config, central_clipping_mod
from models import (
    ARRAYS_KEY,
    CONFIG_KEY,
    EDGE_INFO_KEY,
    ERROR_BAD_CONFIG,
    METRIC_DELTA,
    METRIC_EPSILON,
    METRIC_EVAL_LOSS,
    METRIC_EXAMPLES_TRAINED,
    METRIC_NUM_EXAMPLES,
    METRIC_TRAIN_LOSS,
    METRICS_KEY,
    RunConfig,
    parse_run_config,
)
from privacy import DPConfig, compute_epsilon

from .learners import Learner, load_weights, subset, train_epochs, weights_of

logger = logging.getLogger(__name__)

#: ``context.state`` key of an edge's privacy history (σ, q, steps lists).
LEDGER_STATE = "simulated-ledger"
#: Examples an edge scores in its evaluate reply (its local training loss).
EVAL_SAMPLE = 256


def dp_config(config: RunConfig) -> DPConfig:
    """Map the run config to ``privacy.DPConfig`` (DP-SGD in ``dp-mode`` local and both)."""
    return DPConfig(
        enabled=config.local_dp,
        noise_multiplier=config.noise_multiplier,
        max_grad_norm=config.max_grad_norm,
        delta=config.target_delta,
        accountant=config.accountant,
        batch_size=config.batch_size,
        local_epochs=config.local_epochs,
        learning_rate=config.learning_rate,
        grad_sample_mode=config.grad_sample_mode,
    )


def edge_seed(seed: int, server_round: int, partition: int) -> int:
    """Seed of one edge's round: data order, Poisson sampling and (simulated) noise."""
    digest = hashlib.sha256(f"{seed}:{server_round}:{partition}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def arrays_of(weights: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Wrap named parameters in an ``ArrayRecord``."""
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in weights.items()})


def _history(context: Context) -> list[tuple[float, float, int]]:
    record = context.state.config_records.get(LEDGER_STATE)
    if record is None:
        return []
    sigmas = cast(list[float], record["sigma"])
    rates = cast(list[float], record["q"])
    steps = cast(list[int], record["steps"])
    return [(float(s), float(q), int(n)) for s, q, n in zip(sigmas, rates, steps, strict=True)]


def _charge(context: Context, entries: Sequence[tuple[float, float, int]]) -> None:
    history = _history(context) + list(entries)
    context.state[LEDGER_STATE] = ConfigRecord(
        {
            "sigma": [s for s, _, _ in history],
            "q": [q for _, q, _ in history],
            "steps": [n for _, _, n in history],
        }
    )


def epsilon_of(context: Context, *, delta: float, accountant: Literal["prv", "rdp"]) -> float:
    """Return the edge's cumulative ε over every release charged so far (inf: no noise)."""
    return float(compute_epsilon(_history(context), delta=delta, accountant=accountant))


def _train(
    msg: Message,
    context: Context,
    *,
    partitions: Sequence[TensorDataset],
    learner: Learner,
    overrides: Mapping[str, Any],
) -> Message:
    # 1. Configuration, the edge's partition and the global model.
    config = parse_run_config(context.run_config, overrides)
    partition = int(context.node_config["partition-id"])
    data = partitions[partition]
    arrays = msg.content.array_records[ARRAYS_KEY]
    model = load_weights(learner.new_model(0), {k: v.numpy() for k, v in arrays.items()})
    cfg = msg.content.config_records.get(CONFIG_KEY)
    value = None if cfg is None else cfg.get("server-round")
    server_round = int(value) if isinstance(value, int | float) else 0
    # 2. σ calibrated to the run's whole plan for this edge's size (target-epsilon).
    dp = dp_config(config)
    if dp.enabled and config.target_epsilon > 0.0:
        try:
            dp = calibrated_dp_config(
                dp,
                target_epsilon=config.target_epsilon,
                num_examples=len(data),
                rounds=config.num_server_rounds,
            )
        except ValueError as exc:
            return Message(Error(ERROR_BAD_CONFIG, f"cannot calibrate noise: {exc}"), reply_to=msg)
    # 3. Train, then charge what was released.
    loss, history = train_epochs(
        model, data, learner=learner, dp=dp, seed=edge_seed(config.seed, server_round, partition)
    )
    if config.dp_mode == "central":
        _charge(context, [(float(config.central_noise_multiplier), 1.0, 1)])
    else:
        _charge(context, history)
    metrics = MetricRecord(
        {
            METRIC_NUM_EXAMPLES: 1 if config.central_dp else len(data),
            METRIC_EXAMPLES_TRAINED: len(data),
            METRIC_TRAIN_LOSS: loss,
            METRIC_EPSILON: epsilon_of(context, delta=dp.delta, accountant=dp.accountant),
            METRIC_DELTA: dp.delta,
        }
    )
    info = ConfigRecord({"edge": f"edge-{partition:04d}", "channel": ""})
    content = RecordDict(
        {ARRAYS_KEY: arrays_of(weights_of(model)), METRICS_KEY: metrics, EDGE_INFO_KEY: info}
    )
    return Message(content, reply_to=msg)


def _evaluate(
    msg: Message, context: Context, *, partitions: Sequence[TensorDataset], learner: Learner
) -> Message:
    partition = int(context.node_config["partition-id"])
    data = partitions[partition]
    sample = subset(data, np.arange(min(len(data), EVAL_SAMPLE)))
    arrays = msg.content.array_records[ARRAYS_KEY]
    model = load_weights(learner.new_model(0), {k: v.numpy() for k, v in arrays.items()})
    model.eval()
    loss = float(learner.losses(model, sample.tensors).mean().detach())
    metrics = MetricRecord({METRIC_NUM_EXAMPLES: len(sample), METRIC_EVAL_LOSS: loss})
    info = ConfigRecord({"edge": f"edge-{partition:04d}", "channel": ""})
    return Message(RecordDict({METRICS_KEY: metrics, EDGE_INFO_KEY: info}), reply_to=msg)


def build_simulation_client_app(
    *,
    partitions: Sequence[TensorDataset],
    learner: Learner,
    overrides: Mapping[str, Any],
) -> ClientApp:
    """Build the virtual edges' ``ClientApp``.

    Parameters
    ----------
    partitions : Sequence[TensorDataset]
        Partition i is node ``partition-id`` i's training data (non-empty).
    learner : Learner
        The task's model family.
    overrides : Mapping[str, Any]
        Run-config values (hyphenated keys); ``run_simulation`` passes no run config.

    Returns
    -------
    ClientApp
        With ``train`` (behind ``central_clipping_mod``) and ``evaluate`` handlers.

    Raises
    ------
    ValueError
        If ``overrides`` is not a valid run config or a partition is empty.
    """
    captured = dict(overrides)
    parse_run_config({}, captured)
    if any(len(p) == 0 for p in partitions):
        raise ValueError("every partition must hold at least one example")
    app = ClientApp()

    @app.train(mods=[central_clipping_mod(captured)])
    def train(msg: Message, context: Context) -> Message:
        return _train(msg, context, partitions=partitions, learner=learner, overrides=captured)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        return _evaluate(msg, context, partitions=partitions, learner=learner)

    return app
