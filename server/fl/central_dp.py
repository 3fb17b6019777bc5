"""The aggregating strategy per ``dp-mode``: plain ``FedAvg``, or FedAvg under client-level DP.

In ``dp-mode`` central and both, FedAvg runs inside Flower's
``DifferentialPrivacyClientSideFixedClipping``: the wrapper sends ``clipping_norm`` with
each training message (edges clip their update with ``fixedclipping_mod``), averages the
clipped updates with equal weights and adds Gaussian noise of std ``σ_c · C_c / m`` for
``m`` sampled edges. Its ``RdpAccountant`` composes one Gaussian release of noise
multiplier σ_c per aggregated round: add-or-remove-one edge, **no sampling amplification**
(the only model the fixed-clipping accounting supports; conservative), reported at
``target-delta``. With ``central-max-epsilon`` set, the wrapper raises
``PrivacyBudgetExhausted`` before sending a round whose release would exceed it.

The accounted wrapper needs exactly ``m`` replies every round, so the inner FedAvg samples
a fixed number of edges (``FixedSampleFedAvg``): ``m = max(⌊n · fraction-train⌋,
min-nodes)`` for the ``n`` edges connected when the run starts.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import (
    Grid,
    NeighboringRelation,
    PrivacyConfig,
    RdpAccountant,
    SamplingMethod,
)
from flwr.serverapp.strategy import (
    Bulyan,
    DifferentialPrivacyClientSideFixedClipping,
    FedAvg,
    FedMedian,
    FedTrimmedAvg,
    Krum,
    MultiKrum,
    Strategy,
)

from models import METRIC_NUM_EXAMPLES, RunConfig

from .robust import GuardSettings
from .strategy import aggregate_metrics

logger = logging.getLogger(__name__)


def wait_for_edges(grid: Grid, minimum: int, *, poll_seconds: float = 1.0) -> list[int]:
    """Return the connected node ids once at least ``minimum`` edges are connected.

    Waits as Flower's own sampling does (no deadline: the SuperLink's run timeout
    applies).
    """
    while len(nodes := list(grid.get_node_ids())) < minimum:
        logger.info("waiting for edges: %d connected, %d required", len(nodes), minimum)
        time.sleep(poll_seconds)
    return nodes


class FixedSampleFedAvg(FedAvg):
    """``FedAvg`` that trains exactly ``sample_size`` edges every round.

    ``aggregate_train`` is Flower's, unmodified, as the accounted DP wrapper requires.

    Parameters
    ----------
    sample_size : int
        Edges sampled (uniformly, without replacement) for each training round.
    rng : random.Random or None
        Source of the sampling (not security relevant: the accounting assumes no
        amplification by sampling); a fresh ``random.Random`` when ``None``.
    **kwargs : Any
        ``FedAvg`` arguments.

    Raises
    ------
    ValueError
        If ``sample_size`` < 1.
    """

    def __init__(self, *, sample_size: int, rng: random.Random | None = None, **kwargs: Any):
        if sample_size < 1:
            raise ValueError("sample_size must be at least 1")
        super().__init__(**kwargs)
        self.sample_size = sample_size
        self._rng = rng or random.Random()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Send the global model and config to exactly ``sample_size`` edges."""
        if self.fraction_train == 0.0:
            return []
        nodes = wait_for_edges(grid, max(self.min_available_nodes, self.sample_size))
        sampled = self._rng.sample(sorted(nodes), self.sample_size)
        logger.info("round %d: sampled %d of %d edges", server_round, len(sampled), len(nodes))
        config["server-round"] = server_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return [
            Message(content=record, message_type=MessageType.TRAIN, dst_node_id=node)
            for node in sampled
        ]


def central_sample_size(config: RunConfig, connected: int) -> int:
    """Return ``m``, the edges trained per round under central DP, for ``connected`` edges."""
    return max(int(connected * config.fraction_train), int(config.min_nodes))


def guard_settings(config: RunConfig) -> GuardSettings:
    """Return the bounds ``server.fl.robust`` applies to each round's updates for ``config``."""
    return GuardSettings(
        weight_key=METRIC_NUM_EXAMPLES,
        norm_factor=config.update_norm_bound,
        weight_cap=config.weight_cap,
        central_norm=config.central_clipping_norm if config.central_dp else None,
        # Under SecAgg+ every reply carries the same aggregate: quality flags are recorded
        # but cannot take one edge out (zeroing a reply would shrink the whole update).
        quality="flag"
        if config.secure_aggregation and config.quality_policy == "exclude"
        else config.quality_policy,
        weighted=config.aggregation_rule in ("fedavg", "multikrum"),
    )


def _robust_rule(config: RunConfig, fedavg: dict[str, Any]) -> Strategy:
    """Return Flower's strategy for ``config.aggregation`` (local DP or no DP)."""
    rule = config.aggregation_rule
    tolerated = config.tolerated_edges
    if rule == "trimmed-mean":
        return FedTrimmedAvg(beta=config.trim_fraction, **fedavg)
    if rule == "median":
        return FedMedian(**fedavg)
    if rule == "krum":
        return Krum(num_malicious_nodes=tolerated, **fedavg)
    if rule == "multikrum":
        selected = max(config.min_nodes - tolerated, 1)
        return MultiKrum(num_malicious_nodes=tolerated, num_nodes_to_select=selected, **fedavg)
    if rule == "bulyan":
        return Bulyan(num_malicious_nodes=tolerated, **fedavg)
    return FedAvg(**fedavg)


def build_strategy(config: RunConfig, *, grid: Grid) -> Strategy:
    """Return the aggregating strategy for ``config.dp_mode``.

    Parameters
    ----------
    config : RunConfig
        The run configuration.
    grid : Grid
        The grid; in central and both modes the edges connected now (after waiting for
        ``min-nodes``) fix the per-round sample size ``m``.

    Returns
    -------
    Strategy
        The ``aggregation`` rule (``FedAvg`` weighted by the capped ``num-examples``, or
        one of Flower's robust rules) in local and off modes, or
        ``DifferentialPrivacyClientSideFixedClipping`` around ``FixedSampleFedAvg`` with
        an ``RdpAccountant`` (central and both modes).
    """
    fedavg: dict[str, Any] = {
        "fraction_train": config.fraction_train,
        "fraction_evaluate": 1.0,
        "min_train_nodes": config.min_nodes,
        "min_evaluate_nodes": config.min_nodes,
        "min_available_nodes": config.min_nodes,
        "weighted_by_key": METRIC_NUM_EXAMPLES,
        "train_metrics_aggr_fn": aggregate_metrics,
        "evaluate_metrics_aggr_fn": aggregate_metrics,
    }
    if not config.central_dp:
        return _robust_rule(config, fedavg)
    connected = len(wait_for_edges(grid, config.min_nodes))
    sample = central_sample_size(config, connected)
    accountant = RdpAccountant(
        PrivacyConfig(
            target_delta=config.target_delta,
            population_size=max(connected, sample),
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
            max_epsilon=config.central_max_epsilon or None,
        )
    )
    logger.info(
        "central DP: %d edges per round, sigma_c=%.3f, C_c=%.3f, noise std on the mean %.4f",
        sample,
        config.central_noise_multiplier,
        config.central_clipping_norm,
        config.central_noise_multiplier * config.central_clipping_norm / sample,
    )
    return DifferentialPrivacyClientSideFixedClipping(
        FixedSampleFedAvg(sample_size=sample, **fedavg),
        config.central_noise_multiplier,
        config.central_clipping_norm,
        sample,
        accountant=accountant,
    )
