"""The Flower ``ServerApp``: FedAvg of the behaviour model over the edges, recorded.

The run config is parsed once into ``models.RunConfig``. The initial global model is the
run's task model (``models.initial_weights``: the behaviour model by default) initialised
from the run's ``seed``, or, with ``warm-start`` on, the newest registry version of the same
architecture (``server.fl.model_versions``). ``dp-mode`` picks the aggregating
strategy (``server.fl.central_dp``): plain FedAvg over the edges' DP-SGD updates, or FedAvg
inside Flower's client-side fixed-clipping DP wrapper with its accountant. When
``database-url`` is set, the run, each aggregated round (with one row per edge, and the
run's central ε in central / both mode) and the outcome are recorded through
``server.crud.training``, and each round's global model is published to the model registry
(``server.fl.recorder``). Every train and evaluate message names the model it carries
(``model-version``). The run ends ``budget_exhausted`` when a privacy budget stopped it
(edge ledgers over ``max-epsilon``, or the server accountant at ``central-max-epsilon``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.exception import PrivacyBudgetExhausted
from flwr.serverapp.strategy import Result

from models import RunConfig, initial_weights, parse_run_config

from .central_dp import build_strategy, guard_settings
from .model_versions import ModelStore, RunModels
from .recorder import (
    MODEL_NAME,
    DatabaseRunRecorder,
    RunRecorder,
    RunStatus,
    database_recorder,
)
from .secagg import SecAggPlusGrid, secagg_workflow
from .strategy import ProfileStrategy

logger = logging.getLogger(__name__)

__all__ = [
    "MODEL_NAME",
    "DatabaseRunRecorder",
    "RunRecorder",
    "RunStatus",
    "app",
    "build_server_app",
    "database_recorder",
    "initial_arrays",
    "run_federated",
]


RecorderFactory = Callable[[RunConfig], RunRecorder | None]
#: Flower's server-side evaluation hook: ``(server_round, arrays) -> metrics``.
EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]


def initial_arrays(config: RunConfig) -> ArrayRecord:
    """Return the initial global model's named parameters (the run's task, from ``seed``)."""
    return ArrayRecord(
        {name: Array(np.ascontiguousarray(v)) for name, v in initial_weights(config).items()}
    )


def run_federated(
    *,
    grid: Grid,
    config: RunConfig,
    recorder: RunRecorder | None = None,
    run_id: int = 0,
    initial: ArrayRecord | None = None,
    evaluate_fn: EvaluateFn | None = None,
) -> Result:
    """Run FedAvg for up to ``config.num_server_rounds`` rounds on ``grid``.

    The run ends ``budget_exhausted`` (cleanly, returning what was trained) when a
    privacy budget stops it: edges refusing rounds over their ``max-epsilon`` (local
    ledgers), or the central-DP accountant refusing a release over
    ``central-max-epsilon``; also when it completes but some edge refused a round.

    A recorder that also keeps models (a ``ModelStore``, as ``DatabaseRunRecorder`` is)
    gets each aggregated round's global model published as a new registry version, and
    with ``warm-start`` on the run starts from the newest version of its architecture.

    Parameters
    ----------
    grid : Grid
        Flower grid connecting to the edges.
    config : RunConfig
        Parsed run configuration.
    recorder : RunRecorder or None
        Where to record the run (and, if it is a ``ModelStore``, its model versions); not
        recorded when ``None``.
    run_id : int
        Flower run id (recorded with the configuration).
    initial : ArrayRecord or None
        Initial global model, winning over a warm start; when ``None``, the newest
        compatible registry version (``warm-start``) or the run's task model from
        ``config.seed`` (simulations pass models sized to their data, e.g. a text head per
        class).
    evaluate_fn : Callable[[int, ArrayRecord], MetricRecord | None] or None
        Server-side evaluation of the global model after each round (Flower's
        ``evaluate_fn``; simulations score a shared held-out set with it).

    Returns
    -------
    Result
        Final arrays and per-round aggregated metrics (train metrics carry
        ``central-epsilon`` in central and both modes).
    """
    # 0. With secure-aggregation on, every training round runs SecAgg+ (server.fl.secagg):
    #    the strategy only ever receives the securely aggregated model.
    if config.secure_aggregation:
        logger.info(
            "secure aggregation on (SecAgg+): %d shares, threshold %d; the server sees "
            "only the weighted sum of the edges' updates",
            config.secagg_shares,
            config.secagg_threshold,
        )
        grid = SecAggPlusGrid(grid, secagg_workflow(config))
    # 1. The starting model: the caller's, a warm start from the registry, or the seeded one.
    versions = RunModels(
        config=config, store=recorder if isinstance(recorder, ModelStore) else None
    )
    start_arrays = versions.starting_model(initial)
    # 2. Strategy for the DP mode and aggregation rule, wrapped with the update guard
    #    (server.fl.robust), round recording, the budget stop and model publication.
    strategy = ProfileStrategy(
        build_strategy(config, grid=grid),
        min_nodes=config.min_nodes,
        on_round=None if recorder is None else recorder.record_round,
        server_learning_rate=config.server_learning_rate,
        server_momentum=config.server_momentum,
        model_version=versions.start_label,
        publisher=versions,
        guard=guard_settings(config),
    )
    # 3. Record the start (the DB URL itself is not recorded).
    recorded = config.model_dump(mode="json", exclude={"database_url", "data_dir"})
    recorded["flwr-run-id"] = run_id
    recorded["initial-model-version"] = versions.start_label
    if recorder is not None:
        recorder.start(config=recorded, num_rounds=config.num_server_rounds)
    # 4. Federated rounds, until done or a privacy budget stops them.
    status: RunStatus = "failed"
    try:
        try:
            result = strategy.start(
                grid=grid,
                initial_arrays=start_arrays,
                num_rounds=config.num_server_rounds,
                evaluate_fn=evaluate_fn,
            )
        except PrivacyBudgetExhausted as exc:
            logger.warning("federated run stopped by its privacy budget: %s", exc)
            result = strategy.result
            status = "budget_exhausted"
        else:
            status = "budget_exhausted" if strategy.budget_refusals else "completed"
    finally:
        # 5. Record the outcome, also on failure.
        central = strategy.central_privacy()
        if central is not None:
            logger.info("central DP spent: epsilon=%.4f at delta=%g", *central)
        logger.info("federated run finished: %s", status)
        if recorder is not None:
            recorder.finish(status=status)
    if not result.arrays:
        result.arrays = start_arrays
    return result


def build_server_app(
    overrides: Mapping[str, Any] | None = None,
    *,
    recorder_factory: RecorderFactory = database_recorder,
    initial: ArrayRecord | None = None,
    evaluate_fn: EvaluateFn | None = None,
) -> ServerApp:
    """Build the ``ServerApp``.

    Parameters
    ----------
    overrides : Mapping[str, Any] or None
        Run-config values (hyphenated keys) that win over ``context.run_config``;
        ``run_simulation`` passes no run config, so simulations set them here.
    recorder_factory : Callable[[RunConfig], RunRecorder | None]
        Builds the run recorder from the parsed config (the database by default).
    initial : ArrayRecord or None
        Initial global model (see ``run_federated``).
    evaluate_fn : Callable[[int, ArrayRecord], MetricRecord | None] or None
        Server-side evaluation after each round (see ``run_federated``).

    Returns
    -------
    ServerApp
        The app, whose ``main`` runs ``run_federated``.

    Raises
    ------
    ValueError
        If ``overrides`` holds unknown keys or invalid values.
    """
    captured = dict(overrides or {})
    parse_run_config({}, captured)  # fail fast on bad overrides
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        config = parse_run_config(context.run_config, captured)
        run_federated(
            grid=grid,
            config=config,
            recorder=recorder_factory(config),
            run_id=context.run_id,
            initial=initial,
            evaluate_fn=evaluate_fn,
        )

    return app


#: The ServerApp named in ``pyproject.toml`` (``server.fl.server_app:app``).
app = build_server_app()
