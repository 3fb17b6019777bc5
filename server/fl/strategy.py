"""The outer strategy wrapper: per-edge capture, round callbacks, budget stop, server momentum.

``ProfileStrategy`` wraps the strategy that aggregates (Flower's ``FedAvg``, or ``FedAvg``
inside Flower's central-DP wrapper, see ``server.fl.central_dp``) and adds:

- per-edge rows (edge name, channel and metrics from each reply's ``EDGE_INFO_KEY``
  record, or the error code and reason of an error reply) and a callback per aggregated
  round (used to record rounds in the server database);
- the run's central ε after each training round (``central-epsilon`` / ``central-delta``
  train metrics) when the inner strategy is an accounted Flower DP wrapper;
- the budget stop: edges refuse a round that would take their ledger over ``max-epsilon``;
  once refusals leave a round without an aggregate or with fewer than ``min_nodes``
  trained edges, the next ``configure_train`` raises Flower's ``PrivacyBudgetExhausted``,
  the exception the central-DP wrapper raises before a release would exceed
  ``central-max-epsilon``;
- robust aggregation (``server.fl.robust``): each round's replies are validated and their
  norms and weights bounded before the inner strategy sees them; what was excluded,
  zeroed, clipped or capped is added to that edge's row (``robust``: action and reason)
  and counted in the round's metrics (``updates-excluded``, ``updates-clipped``,
  ``weights-capped``);
- FedAvgM server momentum, applied to the inner strategy's output. With central DP that
  output is the already noised average, so momentum is post-processing and costs no
  privacy (it also cannot sit inside the wrapper: the accounted path requires an
  unmodified ``FedAvg.aggregate_train``);
- model versions: every train and evaluate ConfigRecord names the global model it carries
  (``model-version``), and each round's global model is handed to a publisher (the model
  registry, ``server.fl.model_versions``) with the (ε, δ) it carries; its evaluation
  follows once aggregated.

Metrics aggregate as: mean of losses, AUC and accuracy weighted by ``examples-trained``
when every reply has it (else by the FedAvg weight); **max** of ε and δ (the weakest edge
guarantee); sums of example counts and of included / excluded subjects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MetricRecord,
    MetricRecordValues,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.exception import PrivacyBudgetExhausted
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    Result,
    Strategy,
)

from models import (
    CONFIG_MODEL_VERSION,
    EDGE_INFO_KEY,
    ERROR_BUDGET_EXHAUSTED,
    METRIC_BUDGET_EXHAUSTED,
    METRIC_CENTRAL_DELTA,
    METRIC_CENTRAL_EPSILON,
    METRIC_DELTA,
    METRIC_EPSILON,
    METRIC_EXAMPLES_TRAINED,
    METRIC_NUM_EXAMPLES,
    METRIC_SUBJECTS_EXCLUDED,
    METRIC_SUBJECTS_INCLUDED,
)
from models.quality import QUALITY_PREFIX

from .model_versions import ModelPublisher, ModelRelease, release_privacy, round_label
from .robust import GuardNote, GuardSettings, guard_replies

logger = logging.getLogger(__name__)


Phase = Literal["train", "evaluate"]
_MAX_KEYS = frozenset({METRIC_EPSILON, METRIC_DELTA, METRIC_BUDGET_EXHAUSTED})
_SUM_KEYS = frozenset(
    {
        METRIC_NUM_EXAMPLES,
        METRIC_EXAMPLES_TRAINED,
        METRIC_SUBJECTS_INCLUDED,
        METRIC_SUBJECTS_EXCLUDED,
    }
)


@dataclass(frozen=True, slots=True)
class RoundSummary:
    """One aggregated round: phase, aggregated metrics and one row per replying edge."""

    server_round: int
    phase: Phase
    metrics: dict[str, float]
    edges: list[dict[str, Any]] = field(default_factory=list)


def _metrics_of(content: RecordDict) -> MetricRecord:
    return next(iter(content.metric_records.values()))


def aggregate_metrics(contents: list[RecordDict], weight_key: str) -> MetricRecord:
    """Aggregate the replies' MetricRecords (our rule per key, see the module docstring).

    Parameters
    ----------
    contents : list[RecordDict]
        Contents of valid replies, each with one MetricRecord holding the same keys.
    weight_key : str
        Key of the FedAvg weight; means use ``examples-trained`` instead when every
        reply carries it.

    Returns
    -------
    MetricRecord
        Aggregated metrics; means fall back to unweighted when all weights are 0.
    """
    records = [_metrics_of(c) for c in contents]
    if not records:
        return MetricRecord()
    mean_key = (
        METRIC_EXAMPLES_TRAINED
        if all(METRIC_EXAMPLES_TRAINED in r for r in records)
        else weight_key
    )
    weights = [float(r[mean_key]) for r in records]  # type: ignore[arg-type]
    total = sum(weights)
    out: dict[str, MetricRecordValues] = {}
    for key in records[0]:
        if key.startswith(QUALITY_PREFIX):
            continue  # one edge's data quality: kept in its row, meaningless averaged
        values = [float(r[key]) for r in records]  # type: ignore[arg-type]
        if key in _SUM_KEYS or key == weight_key:
            out[key] = sum(values)
        elif key in _MAX_KEYS:
            out[key] = max(values)
        elif total > 0:
            out[key] = sum(w * v for w, v in zip(weights, values, strict=True)) / total
        else:
            out[key] = sum(values) / len(values)
    return MetricRecord(out)


def edge_rows(replies: Iterable[Message]) -> list[dict[str, Any]]:
    """Return one row per reply: edge, channel and metrics, or the error code and reason."""
    rows: list[dict[str, Any]] = []
    for reply in replies:
        if reply.has_error():
            rows.append(
                {
                    "edge": None,
                    "channel": None,
                    "error_code": int(reply.error.code),
                    "reason": str(reply.error.reason or ""),
                }
            )
            continue
        info = reply.content.config_records.get(EDGE_INFO_KEY)
        row: dict[str, Any] = {
            "edge": None if info is None else str(info.get("edge", "")),
            "channel": None if info is None else str(info.get("channel", "")),
        }
        records = reply.content.metric_records
        if records:
            row.update({k: float(v) for k, v in _metrics_of(reply.content).items()})  # type: ignore[arg-type]
        rows.append(row)
    return rows


def _annotate(rows: list[dict[str, Any]], notes: list[GuardNote]) -> None:
    """Add each guard note to its edge's row (``robust``: list of action and reason)."""
    for note in notes:
        rows[note.index].setdefault("robust", []).append(
            {"action": note.action, "reason": note.reason}
        )
        if note.action == "excluded":
            rows[note.index]["excluded"] = True


def _guard_counts(notes: list[GuardNote]) -> dict[str, float]:
    """Return the round's counts of excluded (or zeroed), clipped and capped updates."""
    actions = [n.action for n in notes]
    return {
        "updates-excluded": float(sum(a in ("excluded", "zeroed") for a in actions)),
        "updates-clipped": float(actions.count("clipped")),
        "weights-capped": float(sum(a in ("weight-capped", "weight-equalised") for a in actions)),
    }


def _float_metrics(metrics: MetricRecord | None) -> dict[str, float]:
    return {} if metrics is None else {k: float(v) for k, v in metrics.items()}  # type: ignore[arg-type]


class ProfileStrategy(Strategy):
    """Wraps the aggregating strategy with capture, callbacks, budget stop and momentum.

    Parameters
    ----------
    strategy : Strategy
        The strategy that samples edges and aggregates (``FedAvg`` or a Flower DP
        wrapper around it).
    min_nodes : int
        Edges that must train for a round to count; budget refusals that leave fewer
        stop the run.
    on_round : Callable[[RoundSummary], None] or None
        Called after each aggregation (train and evaluate) with the round's summary.
    server_learning_rate : float
        η_s: the global model moves by η_s times the (momentum-smoothed) average update.
    server_momentum : float
        β of server-side momentum (FedAvgM); 0 is plain FedAvg. Both act on the already
        clipped and noised aggregate, so they cost no privacy (post-processing).
    model_version : str or None
        Label of the initial global model, sent as ``model-version`` in every train and
        evaluate ConfigRecord and replaced by each round's label; ``None`` sends none.
    publisher : ModelPublisher or None
        Keeps each round's global model and names it (``RunModels``); without one a
        round's model is labelled ``<initial label>+r<round>``.
    guard : GuardSettings or None
        Bounds applied to every round's replies before aggregation
        (``server.fl.robust``); ``None`` aggregates what edges sent as is.

    Raises
    ------
    ValueError
        If ``min_nodes`` < 1, ``server_learning_rate`` <= 0 or ``server_momentum`` is
        outside [0, 1).
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        min_nodes: int = 2,
        on_round: Callable[[RoundSummary], None] | None = None,
        server_learning_rate: float = 1.0,
        server_momentum: float = 0.0,
        model_version: str | None = None,
        publisher: ModelPublisher | None = None,
        guard: GuardSettings | None = None,
    ) -> None:
        if min_nodes < 1:
            raise ValueError("min_nodes must be at least 1")
        if server_learning_rate <= 0.0:
            raise ValueError("server_learning_rate must be > 0")
        if not 0.0 <= server_momentum < 1.0:
            raise ValueError("server_momentum must be within [0, 1)")
        self.strategy = strategy
        self.min_nodes = min_nodes
        self.on_round = on_round
        self.server_learning_rate = server_learning_rate
        self.server_momentum = server_momentum
        self.model_version = model_version
        self.publisher = publisher
        self.guard = guard
        self._start_version = model_version
        self._published_round: int | None = None
        self.rounds: list[RoundSummary] = []
        self.budget_refusals = 0
        self.stop_reason: str | None = None
        self.result = Result()
        self._global: dict[str, np.ndarray] | None = None
        self._velocity: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"ProfileStrategy({self.strategy!r})"

    def summary(self) -> None:
        """Log the inner strategy's summary."""
        self.strategy.summary()

    # ------------------------------------------------------------------ privacy
    def central_privacy(self) -> tuple[float, float] | None:
        """Return the run's cumulative client-level (ε, δ), or ``None`` without central DP."""
        inner = self.strategy
        if not isinstance(inner, DifferentialPrivacyClientSideFixedClipping):
            return None
        spent = inner.privacy_spent()
        return None if spent is None else (float(spent.epsilon), float(spent.delta))

    # ------------------------------------------------------------------ train
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Refuse to start a round once the budget stopped the run; else delegate.

        Raises
        ------
        PrivacyBudgetExhausted
            If edges' budget refusals stopped the run, or (from the central-DP wrapper)
            if the round's release would exceed ``central-max-epsilon``.
        """
        if self.stop_reason is not None:
            raise PrivacyBudgetExhausted(self.stop_reason)
        self._global = {k: v.numpy() for k, v in arrays.items()}
        return self.strategy.configure_train(server_round, arrays, self._named(config), grid)

    def _named(self, config: ConfigRecord) -> ConfigRecord:
        """Return ``config`` naming the global model sent with it (when a label is known)."""
        if self.model_version is not None:
            config[CONFIG_MODEL_VERSION] = self.model_version
        return config

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Capture each edge's reply, bound the updates, delegate, then apply momentum."""
        materialised = list(replies)
        rows = edge_rows(materialised)  # before the guard and inner strategy change them
        notes: list[GuardNote] = []
        if self.guard is not None and self._global is not None:
            materialised, notes = guard_replies(materialised, self._global, self.guard)
            _annotate(rows, notes)
        arrays, metrics = self.strategy.aggregate_train(server_round, materialised)
        if arrays is not None:
            arrays = self._server_step(arrays)
            self.result.arrays = arrays
        values = _float_metrics(metrics)
        if self.guard is not None and metrics is not None:
            values.update(_guard_counts(notes))
        central = self.central_privacy()
        if central is not None:
            values[METRIC_CENTRAL_EPSILON], values[METRIC_CENTRAL_DELTA] = central
        if arrays is not None:
            self._publish(server_round, arrays, values)
        if metrics is not None or central is not None:
            self.result.train_metrics_clientapp[server_round] = MetricRecord(dict(values))
        self._check_budget(server_round, rows, aggregated=arrays is not None)
        self._capture(RoundSummary(server_round, "train", values, rows))
        return arrays, None if metrics is None else MetricRecord(dict(values))

    def _publish(self, server_round: int, arrays: ArrayRecord, values: dict[str, float]) -> None:
        """Hand the round's global model to the publisher; its label names it from now on."""
        if self.publisher is not None:
            epsilon, delta = release_privacy(values)
            release = ModelRelease(server_round, arrays, epsilon, delta)
            self.model_version = self.publisher.publish(release)
            self._published_round = server_round
        elif self._start_version is not None:
            self.model_version = round_label(self._start_version, server_round)

    def _check_budget(
        self, server_round: int, rows: list[dict[str, Any]], *, aggregated: bool
    ) -> None:
        """Stop the run when budget refusals left the round short of trained edges."""
        refused = sum(1 for r in rows if r.get("error_code") == ERROR_BUDGET_EXHAUSTED)
        trained = sum(1 for r in rows if "error_code" not in r)
        self.budget_refusals += refused
        if refused and (not aggregated or trained < self.min_nodes):
            self.stop_reason = (
                f"round {server_round}: {refused} edge(s) refused because the release "
                f"would exceed their max-epsilon; {trained} trained (min-nodes "
                f"{self.min_nodes})"
            )
            logger.warning("privacy budget stops the run: %s", self.stop_reason)

    def _server_step(self, averaged: ArrayRecord) -> ArrayRecord:
        """Return ``global + η_s · v`` with ``v = β · v + (average − global)``."""
        plain = self.server_momentum == 0.0 and self.server_learning_rate == 1.0
        if plain or self._global is None:
            return averaged
        out: dict[str, Array] = {}
        for key, array in averaged.items():
            base = self._global[key]
            delta = array.numpy() - base
            velocity = self.server_momentum * self._velocity.get(key, 0.0) + delta
            self._velocity[key] = velocity
            out[key] = Array(np.ascontiguousarray(base + self.server_learning_rate * velocity))
        return ArrayRecord(out)

    # ------------------------------------------------------------------ evaluate
    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Delegate to the inner strategy, naming the global model sent."""
        return self.strategy.configure_evaluate(server_round, arrays, self._named(config), grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Capture each edge's reply, then delegate."""
        materialised = list(replies)
        metrics = self.strategy.aggregate_evaluate(server_round, materialised)
        if metrics is not None:
            self.result.evaluate_metrics_clientapp[server_round] = metrics
        values = _float_metrics(metrics)
        published = self._published_round == server_round
        if published and values and self.publisher is not None and self.model_version:
            self.publisher.record_evaluation(label=self.model_version, metrics=values)
        self._capture(RoundSummary(server_round, "evaluate", values, edge_rows(materialised)))
        return metrics

    def _capture(self, summary: RoundSummary) -> None:
        self.rounds.append(summary)
        if self.on_round is not None:
            self.on_round(summary)
