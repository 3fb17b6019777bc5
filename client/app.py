"""The edge's Flower ``ClientApp``: consent-scoped DP-SGD of the behaviour model.

Every message is handled in numbered steps: parse the run config once into ``RunConfig``
and ``DPConfig``, find the edge's store, then train / evaluate / answer a query.
Precondition failures (no data, no consented examples, privacy budget exhausted) become
error replies whose reason says what to fix; nothing raw leaves the edge: replies carry
clipped, noised weights, aggregate metrics and the edge's channel and name.

Data resolution: node-config ``data-path`` (an edge directory; deployment) wins; else the
run-config ``data-dir`` holds edge directories and node-config ``partition-id`` picks the
i-th one sorted by name (simulation). An edge directory holds ``edge.sqlite``.

DP modes (run-config ``dp-mode``): ``local`` trains with DP-SGD and charges the ledger the
round's ``(σ, q, steps)``; ``central`` trains without local noise, the train handler's mod
clips the update to the server's ``clipping_norm`` (``fixedclipping_mod``) and the ledger is
charged the server's client-level Gaussian release ``(σ_c, q = 1, 1 step)``, the same
release the server's accountant composes; ``both`` does DP-SGD and clips, and the ledger
holds the DP-SGD releases (the guarantee that holds without trusting the server); ``off``
trains without noise and the ledger shows ε = ∞. In central and both modes edges report a
constant ``num-examples`` (the accounted wrapper needs equal weights); the real count is
``examples-trained``. The central-DP clipping mod lives in ``client/mods.py``.

Noise calibration: with run-config ``target-epsilon`` > 0, each edge replaces
``noise-multiplier`` by the σ that makes its whole plan for the run (every round, at its own
q = batch / n) end at ε <= target (``client/calibration.py``), before the budget check.

(About 450 lines, above the 400-line guide: the three handlers share the data resolution,
ledger and reply helpers kept here.)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

from models import (
    ARRAYS_KEY,
    CONFIG_KEY,
    EDGE_INFO_KEY,
    ERROR_BAD_CONFIG,
    ERROR_BAD_MESSAGE,
    ERROR_BUDGET_EXHAUSTED,
    ERROR_NO_EDGE_DATA,
    ERROR_NO_EXAMPLES,
    METRIC_BUDGET_EXHAUSTED,
    METRIC_DELTA,
    METRIC_EPSILON,
    METRIC_EVAL_ACCURACY,
    METRIC_EVAL_AUC,
    METRIC_EVAL_LOSS,
    METRIC_EXAMPLES_TRAINED,
    METRIC_NUM_EXAMPLES,
    METRIC_SUBJECTS_EXCLUDED,
    METRIC_SUBJECTS_INCLUDED,
    METRIC_TRAIN_LOSS,
    METRICS_KEY,
    BehaviourGRU,
    RunConfig,
    SequenceSpec,
    get_weights,
    parse_run_config,
)
from privacy import BudgetExhaustedError, DPConfig, PrivacyLedger, Release

from .calibration import resolve_dp_config
from .errors import ClientError, EdgeNotInitialisedError
from .ledger import load_ledger, save_ledger
from .mods import central_clipping_mod
from .scoring import ModelQuality, record_model_quality
from .store import STORE_FILENAME, EdgeStore
from .training import (
    BEHAVIOUR_MODEL,
    evaluate_local,
    load_examples,
    planned_schedule,
    train_local,
)

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


#: ``num-examples`` every edge reports in central / both mode (equal FedAvg weights).
CENTRAL_WEIGHT = 1


class _ReplyError(Exception):
    """A precondition failure answered with an error reply (code + actionable reason)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EdgeRun:
    """What one message needs, parsed once: configs and the edge's directory."""

    config: RunConfig
    dp: DPConfig
    edge_dir: Path


def dp_config_from(config: RunConfig) -> DPConfig:
    """Map the run config to the privacy room's ``DPConfig`` (``max-epsilon`` 0 = no budget).

    DP-SGD is enabled in ``dp-mode`` local and both only.
    """
    return DPConfig(
        enabled=config.local_dp,
        noise_multiplier=config.noise_multiplier,
        max_grad_norm=config.max_grad_norm,
        delta=config.target_delta,
        accountant=config.accountant,
        max_epsilon=config.max_epsilon or None,
        batch_size=config.batch_size,
        local_epochs=config.local_epochs,
        learning_rate=config.learning_rate,
        grad_sample_mode=config.grad_sample_mode,
    )


def _with_calibrated_noise(run: EdgeRun, *, num_examples: int) -> EdgeRun:
    """Return ``run`` with σ calibrated to ``target-epsilon`` (unchanged when it is 0).

    Raises
    ------
    _ReplyError
        With ``ERROR_BAD_CONFIG`` when the target cannot be met.
    """
    try:
        dp = resolve_dp_config(run.dp, config=run.config, num_examples=num_examples)
    except ValueError as exc:
        raise _ReplyError(ERROR_BAD_CONFIG, f"cannot calibrate noise: {exc}") from exc
    return run if dp is run.dp else replace(run, dp=dp)


def resolve_edge_dir(node_config: Mapping[str, Any], config: RunConfig) -> Path:
    """Return the edge directory this node serves.

    Raises
    ------
    _ReplyError
        With ``ERROR_NO_EDGE_DATA`` and what to set when nothing usable is configured.
    """
    data_path = str(node_config.get("data-path", "") or "")
    if data_path:
        edge_dir = Path(data_path)
    elif config.data_dir:
        root = Path(config.data_dir)
        edges = (
            sorted(d for d in root.iterdir() if (d / STORE_FILENAME).is_file())
            if root.is_dir()
            else []
        )
        if "partition-id" not in node_config:
            raise _ReplyError(
                ERROR_NO_EDGE_DATA, "node config has no partition-id to pick an edge in data-dir"
            )
        index = int(node_config["partition-id"])
        if not 0 <= index < len(edges):
            raise _ReplyError(
                ERROR_NO_EDGE_DATA,
                f"partition-id {index} has no edge directory: run-config data-dir holds "
                f"{len(edges)} edge directories with {STORE_FILENAME}",
            )
        edge_dir = edges[index]
    else:
        raise _ReplyError(
            ERROR_NO_EDGE_DATA,
            "no edge data: set node-config data-path to an edge directory (deployment) or "
            "run-config data-dir to a directory of edge directories (simulation)",
        )
    if not (edge_dir / STORE_FILENAME).is_file():
        raise _ReplyError(ERROR_NO_EDGE_DATA, str(EdgeNotInitialisedError(edge_dir)))
    return edge_dir


def _prepare(context: Context, overrides: Mapping[str, Any]) -> EdgeRun:
    try:
        config = parse_run_config(context.run_config, overrides)
    except ValueError as exc:
        raise _ReplyError(ERROR_BAD_CONFIG, f"invalid run config: {exc}") from exc
    return EdgeRun(config, dp_config_from(config), resolve_edge_dir(context.node_config, config))


def _edge_info(store: EdgeStore, edge_dir: Path) -> ConfigRecord:
    return ConfigRecord(
        {
            "channel": store.get_meta("edge_channel") or "",
            "edge": store.get_meta("edge_name") or edge_dir.name,
        }
    )


def _global_model(msg: Message) -> tuple[BehaviourGRU, int]:
    try:
        arrays = msg.content.array_records[ARRAYS_KEY]
        weights = {name: array.numpy() for name, array in arrays.items()}
        config = msg.content.config_records.get(CONFIG_KEY)
        value = None if config is None else config.get("server-round")
        server_round = int(value) if isinstance(value, int | float) else 0
        return BehaviourGRU.from_weights(weights), server_round
    except (KeyError, TypeError, ValueError) as exc:
        reason = f"message carries no usable behaviour model: {exc}"
        raise _ReplyError(ERROR_BAD_MESSAGE, reason) from exc


def _array_record(model: BehaviourGRU) -> ArrayRecord:
    return ArrayRecord(
        {name: Array(np.ascontiguousarray(v)) for name, v in get_weights(model).items()}
    )


def _sampling_seed(seed: int, server_round: int, edge: str) -> int:
    """Seed of data order / Poisson sampling: fixed by the run seed, varied per round and edge."""
    digest = hashlib.sha256(f"{seed}:{server_round}:{edge}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _release_sigma(run: EdgeRun) -> float:
    """σ of this edge's accounted release: central σ_c, local DP-SGD σ, or 0 (no noise)."""
    if run.config.dp_mode == "central":
        return float(run.config.central_noise_multiplier)
    return run.dp.noise_multiplier if run.dp.enabled else 0.0


def _release(
    *, run: EdgeRun, run_id: int, server_round: int, q: float, steps: int, at: datetime
) -> Release:
    return Release(
        model=BEHAVIOUR_MODEL,
        run_id=str(run_id),
        round=server_round,
        accountant=run.dp.accountant,
        noise_multiplier=_release_sigma(run),
        sample_rate=q,
        steps=steps,
        delta=run.dp.delta,
        level="user",
        recorded_at=at,
    )


def _planned_release(
    *, run: EdgeRun, run_id: int, server_round: int, num_examples: int, at: datetime
) -> Release:
    """Return the release this round will be charged.

    Central mode: the server's Gaussian release of the clipped updates, σ_c with no
    sampling amplification (q = 1, one step): client-level, hence user-level for every
    subject of this edge. Otherwise the local DP-SGD schedule (σ = 0 when DP is off).
    """
    if run.config.dp_mode == "central":
        return _release(run=run, run_id=run_id, server_round=server_round, q=1.0, steps=1, at=at)
    q, steps = planned_schedule(num_examples, dp=run.dp)
    return _release(run=run, run_id=run_id, server_round=server_round, q=q, steps=steps, at=at)


def _actual_release(
    run: EdgeRun, planned: Release, history: tuple[tuple[float, float, int], ...]
) -> Release:
    """Return the release to charge: the planned central one, else the DP-SGD steps taken."""
    if run.config.dp_mode == "central":
        return planned
    sigma, q_used = history[0][0], history[0][1]
    return planned.model_copy(
        update={
            "noise_multiplier": sigma,
            "sample_rate": q_used,
            "steps": sum(n for _, _, n in history),
        }
    )


def _next_would_exceed(ledger: PrivacyLedger, release: Release) -> float:
    """1.0 if another release like ``release`` would exceed the budget, else 0.0."""
    return float(ledger.budget is not None and ledger.would_exceed(release))


def _train(msg: Message, context: Context, overrides: Mapping[str, Any], at: datetime) -> Message:
    # 1. Configuration and data, parsed once.
    run = _prepare(context, overrides)
    spec = SequenceSpec()
    model, server_round = _global_model(msg)
    with EdgeStore.for_edge_dir(run.edge_dir) as store:
        # 2. Keep the received global model (scoring uses the latest one).
        store.save_global_model(
            BEHAVIOUR_MODEL, server_round=server_round, weights=model.to_bytes()
        )
        # 3. Consented examples only.
        data = load_examples(store, at=at, spec=spec)
        if not data.train:
            raise _ReplyError(
                ERROR_NO_EXAMPLES,
                f"no training examples: {data.subjects_included} subjects consented to "
                f"model_training ({data.subjects_excluded} did not) and none has enough history",
            )
        # 3b. With run-config target-epsilon, calibrate σ to this edge's size and the
        # run's whole plan (client.calibration; deterministic, cached per process).
        run = _with_calibrated_noise(run, num_examples=len(data.train))
        # 4. Refuse before training if the release would exceed the budget.
        ledger = load_ledger(store, model=BEHAVIOUR_MODEL, dp=run.dp)
        planned = _planned_release(
            run=run,
            run_id=context.run_id,
            server_round=server_round,
            num_examples=len(data.train),
            at=at,
        )
        try:
            ledger.require_budget(planned)
        except BudgetExhaustedError as exc:
            save_ledger(store, ledger)
            raise _ReplyError(
                ERROR_BUDGET_EXHAUSTED, f"{exc} (run-config max-epsilon={run.config.max_epsilon:g})"
            ) from exc
        # 5. Train (DP-SGD unless dp-mode is central or off), then charge what was spent.
        edge = store.get_meta("edge_name") or run.edge_dir.name
        result = train_local(
            model,
            data.train,
            dp=run.dp,
            spec=spec,
            seed=_sampling_seed(run.config.seed, server_round, edge),
        )
        actual = _actual_release(run, planned, result.history)
        try:
            epsilon = ledger.charge(actual)
        except BudgetExhaustedError as exc:
            save_ledger(store, ledger)
            raise _ReplyError(ERROR_BUDGET_EXHAUSTED, f"{exc}; the update was discarded") from exc
        save_ledger(store, ledger)
        metrics = MetricRecord(
            {
                METRIC_NUM_EXAMPLES: (
                    CENTRAL_WEIGHT if run.config.central_dp else result.num_examples
                ),
                METRIC_EXAMPLES_TRAINED: result.num_examples,
                METRIC_TRAIN_LOSS: result.loss,
                METRIC_EPSILON: epsilon,
                METRIC_DELTA: run.dp.delta,
                METRIC_SUBJECTS_INCLUDED: data.subjects_included,
                METRIC_SUBJECTS_EXCLUDED: data.subjects_excluded,
                METRIC_BUDGET_EXHAUSTED: _next_would_exceed(ledger, actual),
            }
        )
        info = _edge_info(store, run.edge_dir)
    return Message(
        RecordDict({ARRAYS_KEY: _array_record(model), METRICS_KEY: metrics, EDGE_INFO_KEY: info}),
        reply_to=msg,
    )


def _evaluate(
    msg: Message, context: Context, overrides: Mapping[str, Any], at: datetime
) -> Message:
    # 1. Configuration, data and the received global model.
    run = _prepare(context, overrides)
    spec = SequenceSpec()
    model, server_round = _global_model(msg)
    with EdgeStore.for_edge_dir(run.edge_dir) as store:
        # 2. Keep the global model, then score consented held-out subjects.
        store.save_global_model(
            BEHAVIOUR_MODEL, server_round=server_round, weights=model.to_bytes()
        )
        data = load_examples(store, at=at, spec=spec)
        result = evaluate_local(model, data.holdout, spec=spec)
        record_model_quality(
            store,
            BEHAVIOUR_MODEL,
            ModelQuality(
                server_round=server_round,
                purchase_auc=result.auc,
                escalation_auc=result.escalation_auc,
                num_examples=result.num_examples,
            ),
        )
        info = _edge_info(store, run.edge_dir)
    metrics = MetricRecord(
        {
            METRIC_NUM_EXAMPLES: result.num_examples,
            METRIC_EVAL_LOSS: result.loss,
            METRIC_EVAL_AUC: result.auc,
            METRIC_EVAL_ACCURACY: result.accuracy,
        }
    )
    return Message(RecordDict({METRICS_KEY: metrics, EDGE_INFO_KEY: info}), reply_to=msg)


def _query(msg: Message, context: Context, overrides: Mapping[str, Any]) -> Message:
    run = _prepare(context, overrides)
    with EdgeStore.for_edge_dir(run.edge_dir) as store:
        info = _edge_info(store, run.edge_dir)
    return Message(RecordDict({EDGE_INFO_KEY: info}), reply_to=msg)


def _guarded(handler: Callable[[], Message], msg: Message) -> Message:
    """Run a handler, turning precondition failures into error replies."""
    try:
        return handler()
    except _ReplyError as exc:
        logger.warning("replying with error %d: %s", exc.code, exc.reason)
        return Message(Error(code=exc.code, reason=exc.reason), reply_to=msg)
    except ClientError as exc:
        logger.warning("edge error: %s", exc)
        return Message(Error(code=ERROR_NO_EDGE_DATA, reason=str(exc)), reply_to=msg)


def build_client_app(
    overrides: Mapping[str, Any] | None = None, *, clock: Clock | None = None
) -> ClientApp:
    """Build the edge's ``ClientApp``.

    Parameters
    ----------
    overrides : Mapping[str, Any] or None
        Run-config values (hyphenated keys) that win over ``context.run_config``;
        ``run_simulation`` passes no run config, so simulations set them here.
    clock : Callable[[], datetime] or None
        Source of the round time used for consent checks and ledger entries; UTC now
        when ``None``.

    Returns
    -------
    ClientApp
        With ``train`` (behind ``central_clipping_mod``), ``evaluate`` and ``query``
        handlers.

    Raises
    ------
    ValueError
        If ``overrides`` holds unknown keys or invalid values.
    """
    captured = dict(overrides or {})
    parse_run_config({}, captured)  # fail fast on bad overrides
    now: Clock = clock or (lambda: datetime.now(UTC))
    app = ClientApp()

    @app.train(mods=[central_clipping_mod(captured)])
    def train(msg: Message, context: Context) -> Message:
        return _guarded(lambda: _train(msg, context, captured, now()), msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        return _guarded(lambda: _evaluate(msg, context, captured, now()), msg)

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        return _guarded(lambda: _query(msg, context, captured), msg)

    return app


#: The ClientApp named in ``pyproject.toml`` (``client.app:app``).
app = build_client_app()
