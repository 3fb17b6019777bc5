"""The edge's Flower ``ClientApp``: consent-scoped DP-SGD, one code path everywhere.

Deployment (``flwr run``, ``fedprofile demo``) and simulation (``fedprofile simulate``) run
these same handlers; they differ only in the data-source seam (``client.learning.source``):
``StoreSource`` reads the node's edge directory, ``PartitionSource`` in-memory partitions.
Every message is handled in numbered steps: parse the run config once into ``RunConfig``
and ``DPConfig``, open the node's data, then train / evaluate / answer a query.
Precondition failures (no data, no consented examples, privacy budget exhausted) become
error replies whose reason says what to fix; nothing raw leaves the edge: replies carry
clipped, noised weights, aggregate metrics and the edge's channel and name.

What is trained is ``RunConfig.task`` (``models.learners``): the behaviour model on
examples with a fixed time split, or the text model on labelled, masked messages.

DP modes (run-config ``dp-mode``): ``local`` trains with DP-SGD and charges the ledger the
round's ``(σ, q, steps)``; ``central`` trains without local noise, the train handler's mod
clips the update to the server's ``clipping_norm`` (``fixedclipping_mod``) and the ledger is
charged the server's client-level Gaussian release ``(σ_c, q = 1, 1 step)``, the same
release the server's accountant composes; ``both`` does DP-SGD and clips, and the ledger
holds the DP-SGD releases (the guarantee that holds without trusting the server); ``off``
trains without noise and the ledger shows ε = ∞. In central and both modes edges report a
constant ``num-examples`` (the accounted wrapper needs equal weights); the real count is
``examples-trained``.

Noise calibration: with run-config ``target-epsilon`` > 0, each edge replaces
``noise-multiplier`` by the σ that makes its whole plan for the run (every round, at its own
q = batch / n) end at ε <= target (``privacy.calibration``), before the budget check. With
``max-epsilon`` set, an edge refuses a round whose release would take its ledger over it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
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
from flwr.clientapp.typing import Mod
from torch import nn

from models import (
    ARRAYS_KEY,
    CONFIG_KEY,
    CONFIG_MODEL_VERSION,
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
    RunConfig,
    get_weights,
    parse_run_config,
)
from models.quality import QualityReference, assess, build_reference, measure
from models.weights import weights_to_bytes
from privacy import BudgetExhaustedError, DPConfig, PrivacyLedger, Release

from .errors import ClientError, LearningDataError
from .learning.config import dp_config_from, resolve_dp_config
from .learning.loop import History, evaluate, train_round
from .learning.source import EdgeSession, LearningData, LearningSource, ModelQuality
from .learning.store_source import StoreSource
from .mods import central_clipping_mod
from .secagg import secure_aggregation_mod

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
class RoundSettings:
    """What one message needs, parsed once: the run config and its DP settings."""

    config: RunConfig
    dp: DPConfig


def _settings(context: Context, overrides: Mapping[str, Any]) -> RoundSettings:
    try:
        config = parse_run_config(context.run_config, overrides)
    except ValueError as exc:
        raise _ReplyError(ERROR_BAD_CONFIG, f"invalid run config: {exc}") from exc
    return RoundSettings(config, dp_config_from(config))


def _with_calibrated_noise(run: RoundSettings, *, num_examples: int) -> RoundSettings:
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


def _edge_info(session: EdgeSession) -> ConfigRecord:
    return ConfigRecord({"channel": session.channel, "edge": session.edge})


def _server_round(msg: Message) -> int:
    config = msg.content.config_records.get(CONFIG_KEY)
    value = None if config is None else config.get("server-round")
    return int(value) if isinstance(value, int | float) else 0


def _model_version(msg: Message) -> str:
    """Return the registry version the server names for the sent weights (``""`` if none)."""
    config = msg.content.config_records.get(CONFIG_KEY)
    value = None if config is None else config.get(CONFIG_MODEL_VERSION)
    return value if isinstance(value, str) else ""


def _global_model(msg: Message, data: LearningData) -> nn.Module:
    """Return the learner's model carrying the message's global weights."""
    try:
        arrays = msg.content.array_records[ARRAYS_KEY]
        return data.learner.model_from_weights({k: a.numpy() for k, a in arrays.items()})
    except (KeyError, TypeError, ValueError) as exc:
        reason = f"message carries no usable {data.learner.name} model: {exc}"
        raise _ReplyError(ERROR_BAD_MESSAGE, reason) from exc


def _array_record(model: nn.Module) -> ArrayRecord:
    return ArrayRecord(
        {name: Array(np.ascontiguousarray(v)) for name, v in get_weights(model).items()}
    )


def sampling_seed(seed: int, server_round: int, edge: str) -> int:
    """Seed of data order / Poisson sampling: fixed by the run seed, varied per round and edge."""
    digest = hashlib.sha256(f"{seed}:{server_round}:{edge}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _release_sigma(run: RoundSettings) -> float:
    """σ of this edge's accounted release: central σ_c, local DP-SGD σ, or 0 (no noise)."""
    if run.config.dp_mode == "central":
        return float(run.config.central_noise_multiplier)
    return run.dp.noise_multiplier if run.dp.enabled else 0.0


def _planned_release(
    *, run: RoundSettings, data: LearningData, run_id: int, server_round: int, at: datetime
) -> Release:
    """Return the release this round will be charged.

    Central mode: the server's Gaussian release of the clipped updates, σ_c with no
    sampling amplification (q = 1, one step): client-level, hence user-level for every
    subject of this edge. Otherwise the local DP-SGD schedule (σ = 0 when DP is off).
    """
    from privacy.calibration import planned_schedule

    if run.config.dp_mode == "central":
        q, steps = 1.0, 1
    else:
        q, steps = planned_schedule(len(data.train), dp=run.dp)
    return Release(
        model=data.learner.name,
        run_id=str(run_id),
        round=server_round,
        accountant=run.dp.accountant,
        noise_multiplier=_release_sigma(run),
        sample_rate=q,
        steps=steps,
        delta=run.dp.delta,
        level=data.level,
        recorded_at=at,
    )


def _actual_release(run: RoundSettings, planned: Release, history: History) -> Release:
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


def _round_data(session: EdgeSession, run: RoundSettings, at: datetime) -> LearningData:
    try:
        return session.data(config=run.config, at=at)
    except LearningDataError as exc:
        raise _ReplyError(ERROR_NO_EXAMPLES, exc.reason) from exc


@dataclass
class _Round:
    """What both handlers start from: settings, the session, consented data, the model."""

    run: RoundSettings
    server_round: int
    session: EdgeSession
    data: LearningData
    model: nn.Module


@contextmanager
def _received(
    msg: Message,
    context: Context,
    *,
    source: LearningSource,
    overrides: Mapping[str, Any],
    at: datetime,
) -> Iterator[_Round]:
    """Open a round: settings, session, consented examples and the received global model.

    Train and evaluate alike parse the configuration once, load consented subjects only and
    keep the received model for scoring.
    """
    run = _settings(context, overrides)
    server_round = _server_round(msg)
    with source.open(context, run.config) as session:
        data = _round_data(session, run, at)
        model = _global_model(msg, data)
        session.keep_global_model(
            model=data.learner.name,
            server_round=server_round,
            weights=weights_to_bytes(get_weights(model)),
            version=_model_version(msg),
            architecture=data.learner.architecture,
        )
        yield _Round(run, server_round, session, data, model)


def _train(
    msg: Message,
    context: Context,
    *,
    source: LearningSource,
    overrides: Mapping[str, Any],
    at: datetime,
) -> Message:
    # 1-2. Configuration, consented examples and the received global model.
    with _received(msg, context, source=source, overrides=overrides, at=at) as received:
        run, server_round, session = received.run, received.server_round, received.session
        data, model = received.data, received.model
        # 3. With run-config target-epsilon, calibrate σ to this edge's size and the run's
        # whole plan (privacy.calibration; deterministic, cached per process).
        run = _with_calibrated_noise(run, num_examples=len(data.train))
        # 4. Refuse before training if the release would exceed the budget.
        ledger = session.load_ledger(model=data.learner.name, dp=run.dp)
        planned = _planned_release(
            run=run, data=data, run_id=context.run_id, server_round=server_round, at=at
        )
        try:
            ledger.require_budget(planned)
        except BudgetExhaustedError as exc:
            session.save_ledger(ledger)
            raise _ReplyError(
                ERROR_BUDGET_EXHAUSTED, f"{exc} (run-config max-epsilon={run.config.max_epsilon:g})"
            ) from exc
        # 5. Train (DP-SGD unless dp-mode is central or off), then charge what was spent.
        seed = sampling_seed(run.config.seed, server_round, session.edge)
        result = train_round(
            model,
            data.train,
            learner=data.learner,
            dp=run.dp,
            seed=seed,
            noise_generator=session.noise_generator(seed),
        )
        actual = _actual_release(run, planned, result.history)
        try:
            epsilon = ledger.charge(actual)
        except BudgetExhaustedError as exc:
            session.save_ledger(ledger)
            raise _ReplyError(ERROR_BUDGET_EXHAUSTED, f"{exc}; the update was discarded") from exc
        session.save_ledger(ledger)
        quality = _data_quality(session, data)
        metrics = MetricRecord(
            {
                **quality,
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
        info = _edge_info(session)
    return Message(
        RecordDict({ARRAYS_KEY: _array_record(model), METRICS_KEY: metrics, EDGE_INFO_KEY: info}),
        reply_to=msg,
    )


def _data_quality(session: EdgeSession, data: LearningData) -> dict[str, float]:
    """Measure this round's training data against the edge's reference window.

    Aggregates only (``models.quality``: PSI, label-rate shift, constant features,
    duplicates, volume; nothing below ``MIN_QUALITY_EXAMPLES`` examples). A round that
    raises no flag becomes the new reference; the reference never leaves the edge.
    """
    learner = data.learner
    features = learner.quality_features(data.train)
    labels = data.train.tensors[learner.label_columns[-1]].numpy()
    saved = session.load_quality_reference(model=learner.name)
    reference = None if saved is None else QualityReference.from_json(saved)
    measured = measure(features, labels, reference)
    if not assess(measured):
        fresh = build_reference(features, labels)
        if fresh is not None:
            session.save_quality_reference(model=learner.name, reference=fresh.to_json())
    return measured


def _evaluate(
    msg: Message,
    context: Context,
    *,
    source: LearningSource,
    overrides: Mapping[str, Any],
    at: datetime,
) -> Message:
    # 1. Configuration, data and the received global model (kept); 2. score consented
    # held-out subjects.
    with _received(msg, context, source=source, overrides=overrides, at=at) as received:
        session, data = received.session, received.data
        result = evaluate(received.model, data.holdout, learner=data.learner)
        session.record_quality(
            model=data.learner.name,
            quality=ModelQuality(
                server_round=received.server_round,
                head_aucs=dict(result.head_aucs),
                num_examples=result.num_examples,
            ),
        )
        info = _edge_info(session)
    metrics = MetricRecord(
        {
            METRIC_NUM_EXAMPLES: result.num_examples,
            METRIC_EVAL_LOSS: result.loss,
            METRIC_EVAL_AUC: result.auc,
            METRIC_EVAL_ACCURACY: result.accuracy,
        }
    )
    return Message(RecordDict({METRICS_KEY: metrics, EDGE_INFO_KEY: info}), reply_to=msg)


def _query(
    msg: Message, context: Context, *, source: LearningSource, overrides: Mapping[str, Any]
) -> Message:
    run = _settings(context, overrides)
    with source.open(context, run.config) as session:
        info = _edge_info(session)
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
    overrides: Mapping[str, Any] | None = None,
    *,
    clock: Clock | None = None,
    source: LearningSource | None = None,
    train_mods: Sequence[Mod] = (),
) -> ClientApp:
    """Build the edge's ``ClientApp`` (the one every deployment and simulation runs).

    Parameters
    ----------
    overrides : Mapping[str, Any] or None
        Run-config values (hyphenated keys) that win over ``context.run_config``;
        ``run_simulation`` passes no run config, so simulations set them here.
    clock : Callable[[], datetime] or None
        Source of the round time used for consent checks, the default cutoff and ledger
        entries; UTC now when ``None``.
    source : LearningSource or None
        Where the node's data comes from: its edge directory (``StoreSource``, default) or
        in-memory partitions (``PartitionSource``, simulations).
    train_mods : Sequence[Mod]
        Mods placed around the train handler, outside the edge's own (so they see the
        reply as it leaves the edge): simulations play faulty or malicious edges with them
        (``simulations.attacks``). Empty for a real edge.

    Returns
    -------
    ClientApp
        With ``train`` (behind ``client.secagg.secure_aggregation_mod``, any
        ``train_mods`` and ``central_clipping_mod``, outermost first), ``evaluate`` and
        ``query`` handlers.

    Raises
    ------
    ValueError
        If ``overrides`` holds unknown keys or invalid values.
    """
    captured = dict(overrides or {})
    parse_run_config({}, captured)  # fail fast on bad overrides
    now: Clock = clock or (lambda: datetime.now(UTC))
    data: LearningSource = source or StoreSource()
    app = ClientApp()

    @app.train(mods=[secure_aggregation_mod(captured), *train_mods, central_clipping_mod(captured)])
    def train(msg: Message, context: Context) -> Message:
        return _guarded(
            lambda: _train(msg, context, source=data, overrides=captured, at=now()), msg
        )

    @app.evaluate()
    def evaluate_handler(msg: Message, context: Context) -> Message:
        return _guarded(
            lambda: _evaluate(msg, context, source=data, overrides=captured, at=now()), msg
        )

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        return _guarded(lambda: _query(msg, context, source=data, overrides=captured), msg)

    return app


#: The ClientApp named in ``pyproject.toml`` (``client.app:app``).
app = build_client_app()
