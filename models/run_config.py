"""The Flower run configuration, parsed once at the entry points.

``RunConfig`` mirrors ``[tool.flwr.app.config]`` in ``pyproject.toml`` key for key, with
the same defaults. Flower's keys are hyphenated; ``parse_run_config`` is the one place that
maps them to snake_case. ``run_simulation`` passes an empty run config, so apps also accept
overrides captured when they are built; overrides win over the run config.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

logger = logging.getLogger(__name__)

#: Where differential privacy is applied in a federated run (run-config ``dp-mode``):
#: ``local`` = DP-SGD on each edge (user-level on that edge, accounted in the edge's ledger);
#: ``central`` = client-level DP: edges clip their update, the server adds Gaussian noise to
#: the average and accounts it (Flower's client-side fixed-clipping wrapper);
#: ``both`` = the two together; ``off`` = no noise at all (experiments; the ledger shows ε = ∞).
DPMode = Literal["local", "central", "both", "off"]
#: What a run trains (run-config ``task``): the behaviour model on event histories, or the
#: text model on labelled, masked messages.
LearningTask = Literal["behaviour", "text"]
#: How the server combines the edges' (validated, norm-bounded) updates (run-config
#: ``aggregation``): ``robust`` (the default) is the trimmed mean, or under central DP the
#: clipped, equally weighted mean its accounting is calibrated to; the others name one rule
#: (central DP and secure aggregation accept only ``fedavg`` and ``robust``).
Aggregation = Literal["robust", "fedavg", "trimmed-mean", "median", "krum", "multikrum", "bulyan"]
#: Values Flower's run config can carry.
RunConfigValue = bool | int | float | str


class RunConfig(BaseModel):
    """Run-time configuration of a federated training run (both apps read it).

    Parameters
    ----------
    task : {"behaviour", "text"}
        The model family the run trains (``models.learners``); server and edges build the
        same architecture from it and the architecture keys below.
    num_server_rounds : int
        Federated rounds (train + evaluate each).
    local_epochs : int
        Passes over the local data per round on each edge.
    batch_size : int
        Expected (Poisson) batch size of local DP-SGD; sample rate = batch_size / n.
    learning_rate : float
        Learning rate of the local optimizer.
    local_optimizer : {"sgd", "adam"}
        Local optimizer over each step's (noised, clipped) gradient: post-processing, no
        privacy cost.
    weight_decay : float
        Decoupled weight decay of the local optimizer (data-independent: no privacy cost).
    noise_multiplier : float
        σ of DP-SGD: noise std divided by the clipping norm, per step. Used as is when
        ``target_epsilon`` is 0.
    target_epsilon : float
        When > 0, each edge calibrates its own σ so that its whole plan for this run
        (``num_server_rounds`` rounds of ``local_epochs`` epochs at q = batch / n for its
        ``n`` examples) ends at cumulative ε <= target_epsilon at ``target_delta``
        (``client.calibration``); ``noise_multiplier`` is then ignored. 0 = use
        ``noise_multiplier``. Per run: pair it with ``max_epsilon`` to bound the ledger
        across runs.
    max_grad_norm : float
        C: per-example gradient clipping norm.
    target_delta : float
        δ of the reported (ε, δ) guarantee on each edge.
    accountant : {"prv", "rdp"}
        Accountant for the reported, cumulative ε.
    max_epsilon : float
        Budget on each edge's cumulative ε for this model (its ledger: every round of every
        run); 0 means no budget. The edge refuses a round before training if the round's
        release would take its ledger over the budget.
    dp_mode : {"local", "central", "both", "off"}
        Where DP noise is added (see ``DPMode``). ``local`` (default) is DP-SGD on each
        edge; ``central`` and ``both`` make the server wrap FedAvg in Flower's
        ``DifferentialPrivacyClientSideFixedClipping`` with an RDP accountant.
    central_noise_multiplier : float
        σ_c of client-level central DP: the server adds Gaussian noise of std
        σ_c · C_c / m to the average of m clipped edge updates (std σ_c · C_c on their sum).
    central_clipping_norm : float
        C_c: L2 norm each edge's model update (new − global weights) is clipped to before it
        leaves the edge (central and both modes).
    central_max_epsilon : float
        Budget on the run's cumulative client-level ε (server accountant, RDP, no sampling
        amplification, add-or-remove-one edge, at ``target_delta``); the run stops before a
        release would exceed it. 0 means no budget. Per run: the edges' ledgers compose
        across runs.
    grad_sample_mode : {"auto", "bookkeeping", "ghost", "hooks"}
        Per-example clipping path of local DP-SGD; all exact, they differ in speed.
    server_learning_rate : float
        η_s of the server step: global += η_s · (momentum-smoothed average update).
    server_momentum : float
        β of server-side momentum (FedAvgM); 0 = plain FedAvg. Post-processing of the
        noised edge updates: no privacy cost.
    aggregation : {"robust", "fedavg", "trimmed-mean", "median", "krum", "multikrum", "bulyan"}
        How the server combines the round's updates once ``server.fl.robust`` has checked
        and bounded them: FedAvg weighted by the (capped) ``num-examples``, or Flower's
        FedTrimmedAvg, FedMedian, Krum, MultiKrum or Bulyan. ``robust`` (default, chosen by
        measurement, ``docs/robustness.md``) is the trimmed mean in local and off modes and
        FedAvg in central and both modes, which accept only ``fedavg`` or ``robust``;
        with ``secure_aggregation`` on it is FedAvg too (likewise only ``fedavg`` or
        ``robust``).
    update_norm_bound : float
        Each edge's update (new − global weights) is clipped to this many times the
        round's median update norm before aggregation; 0 = no bound. Under central DP
        every update is clipped to ``central_clipping_norm`` instead, whatever this says.
    weight_cap : float
        Each edge's self-reported ``num-examples`` counts at most this many times the
        round's median in FedAvg's weighting; 0 = no cap. Central DP weighs edges equally.
    quality_policy : {"exclude", "flag", "off"}
        What the edges' per-round data-quality reports do (``models.quality.assess``):
        ``exclude`` (default) leaves out an edge whose data broke (schema break, PSI >
        0.25, label shift > 0.25) and halves the FedAvg weight of one whose data moved
        moderately; ``flag`` only records the flags; ``off`` ignores the reports.
    trim_fraction : float
        ``trimmed-mean``: share of the values cut at each end, per coordinate (Flower's β).
    tolerated_edges : int
        ``krum`` / ``multikrum`` / ``bulyan``: malicious edges the rule must tolerate (f);
        Krum needs more than 2f + 2 edges per round, Bulyan at least 4f + 3.
    secure_aggregation : bool
        Aggregate training updates with Flower's SecAgg+ (``server.fl.secagg``,
        ``client.secagg``, ``docs/secure-aggregation.md``): each edge masks its update
        (new − global weights, times its weight), the server only ever sees the masked
        vectors and their weighted sum. Needs aggregation ``fedavg`` or ``robust`` (then
        FedAvg): per-update rules, norm bounds, weight caps and quality exclusion cannot
        act on updates the server never sees (edges' quality flags are then only
        recorded, as ``quality_policy`` flag). Metrics and edge info stay in clear.
    secagg_shares : int
        SecAgg+ ``num_shares``: each edge splits its mask secrets into this many shares, one
        per neighbour (itself included); more shares tolerate more dropouts and cost more.
        Capped in effect by the edges sampled per round (then every edge is a neighbour).
    secagg_threshold : int
        SecAgg+ reconstruction threshold: shares needed to unmask an edge (or remove a
        dropped edge's masks). Every edge needs this many live neighbours, so a round
        tolerates ``min(shares, edges) − threshold`` dropouts after training; must be below
        ``secagg_shares`` and more than half of it (else a dishonest server could obtain
        both mask secrets of one edge), and at most ``min_nodes``.
    secagg_clipping_range : float
        SecAgg+ quantization range: each coordinate of ``weight / max_weight · update`` is
        clipped to ±this before quantization (silently: size it to bound the updates).
    secagg_max_weight : float
        Largest FedAvg weight (``num-examples``) an edge may report; weights are scaled by
        it before masking, so larger values cost precision and smaller ones overflow.
        Central DP ignores it: every edge weighs 1 there.
    fraction_train : float
        Fraction of connected edges sampled per training round.
    min_nodes : int
        Minimum edges to train, evaluate and be connected.
    data_dir : str
        Directory of edge directories (simulation); empty = node-config ``data-path``.
    database_url : str
        Server database recording training runs and keeping the model registry (one
        version per aggregated round); empty = do not record.
    warm_start : bool
        Start from the newest registry version whose architecture (task, architecture keys
        below, every array's name and shape) matches the run's, instead of the seeded
        initial model; needs ``database_url``. The run's privacy accounting is unchanged:
        edges' ledgers compose across runs either way.
    seed : int
        Seeds model initialisation, data order and Poisson sampling (never DP noise).
    cutoff : datetime or None
        Behaviour task: features come from events at or before the cutoff, the labels from
        ``(cutoff, cutoff + label_window_days]``. ``None`` (run config ``""``): the round
        time minus the label window, i.e. the most recent complete window.
    label_window_days : float
        Length of the behaviour label window in days.
    holdout_fraction : float
        Share of subjects (by pseudonym hash) each edge keeps out of training to evaluate
        the global model on.
    behaviour_hidden : int
        Hidden units of the behaviour model's feature part (0: a linear model on the
        features).
    behaviour_sequence : int
        Units of the behaviour model's recurrent part over the event sequence (0: none).
    text_vocabulary : int
        Text task: public character n-grams and words (from jieba's dictionary, most
        frequent first) the text model has a weight for.
    text_buckets : int
        Text task: hashed buckets for n-grams outside that vocabulary (0: ignore them).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: LearningTask = "behaviour"
    num_server_rounds: int = Field(default=3, ge=1)
    local_epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=1.0, gt=0.0)
    local_optimizer: Literal["sgd", "adam"] = "sgd"
    weight_decay: float = Field(default=0.0, ge=0.0)
    noise_multiplier: float = Field(default=1.0, ge=0.0)
    target_epsilon: float = Field(default=0.0, ge=0.0)
    max_grad_norm: float = Field(default=1.0, gt=0.0)
    target_delta: float = Field(default=1e-5, gt=0.0, lt=1.0)
    accountant: Literal["prv", "rdp"] = "prv"
    max_epsilon: float = Field(default=0.0, ge=0.0)
    dp_mode: DPMode = "local"
    central_noise_multiplier: float = Field(default=1.0, gt=0.0)
    central_clipping_norm: float = Field(default=1.0, gt=0.0)
    central_max_epsilon: float = Field(default=0.0, ge=0.0)
    grad_sample_mode: Literal["auto", "bookkeeping", "ghost", "hooks"] = "auto"
    server_learning_rate: float = Field(default=1.0, gt=0.0)
    server_momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    aggregation: Aggregation = "robust"
    update_norm_bound: float = Field(default=3.0, ge=0.0)
    weight_cap: float = Field(default=2.0, ge=0.0)
    quality_policy: Literal["exclude", "flag", "off"] = "exclude"
    trim_fraction: float = Field(default=0.2, ge=0.0, lt=0.5)
    tolerated_edges: int = Field(default=1, ge=0, le=100)
    secure_aggregation: bool = False
    secagg_shares: int = Field(default=5, ge=3, le=1000)
    secagg_threshold: int = Field(default=3, ge=2, le=1000)
    secagg_clipping_range: float = Field(default=8.0, gt=0.0, le=1e6)
    secagg_max_weight: float = Field(default=1000.0, gt=0.0)
    fraction_train: float = Field(default=1.0, ge=0.0, le=1.0)
    min_nodes: int = Field(default=2, ge=1)
    data_dir: str = ""
    database_url: str = ""
    warm_start: bool = True
    seed: int = 0
    cutoff: AwareDatetime | None = None
    label_window_days: float = Field(default=14.0, gt=0.0, le=366.0)
    holdout_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    behaviour_hidden: int = Field(default=0, ge=0, le=256)
    behaviour_sequence: int = Field(default=0, ge=0, le=128)
    text_vocabulary: int = Field(default=8000, ge=0, le=1_000_000)
    text_buckets: int = Field(default=0, ge=0, le=1 << 22)

    @field_validator("cutoff", mode="before")
    @classmethod
    def _empty_cutoff(cls, value: Any) -> Any:
        """Flower's run config has no null: the empty string means "no cutoff"."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _central_needs_fedavg(self) -> RunConfig:
        """Central DP's noise is calibrated to a mean of clipped updates: only FedAvg."""
        if self.central_dp and self.aggregation not in ("fedavg", "robust"):
            raise ValueError(
                f"aggregation {self.aggregation!r} cannot run under dp-mode {self.dp_mode!r}: "
                "the server's noise and accounting assume a mean of clipped updates; use "
                "aggregation 'robust' or 'fedavg' (updates are clipped to "
                "central-clipping-norm and weighed equally) or dp-mode 'local'"
            )
        need = {
            "krum": 2 * self.tolerated_edges + 3,
            "multikrum": 2 * self.tolerated_edges + 3,
            "bulyan": 4 * self.tolerated_edges + 3,
        }.get(self.aggregation, 1)
        if self.min_nodes < need:
            raise ValueError(
                f"aggregation {self.aggregation!r} tolerating {self.tolerated_edges} malicious "
                f"edge(s) needs at least {need} edges per round; min-nodes is "
                f"{self.min_nodes} (raise min-nodes, lower tolerated-edges or use 'robust')"
            )
        return self

    @model_validator(mode="after")
    def _secure_aggregation_settings(self) -> RunConfig:
        """SecAgg+ yields only the weighted sum: FedAvg, and a consistent share scheme."""
        if not self.secure_aggregation:
            return self
        if self.aggregation not in ("fedavg", "robust"):
            raise ValueError(
                f"aggregation {self.aggregation!r} cannot run with secure-aggregation: the "
                "server only learns the weighted sum of the updates, so a rule that looks "
                "at each update cannot run; use aggregation 'robust' or 'fedavg' (FedAvg "
                "of the masked updates) or turn secure-aggregation off"
            )
        shares, threshold = self.secagg_shares, self.secagg_threshold
        if not shares / 2 < threshold < shares:
            raise ValueError(
                f"secagg-threshold {threshold} must be below secagg-shares {shares} (Flower's "
                "SecAgg+ requires it) and more than half of it (else the server could "
                "collect both mask secrets of one edge); e.g. shares 5, threshold 3"
            )
        if self.min_nodes < threshold:
            raise ValueError(
                f"secagg-threshold {threshold} needs at least that many edges per round, "
                f"min-nodes is {self.min_nodes}: raise min-nodes or lower secagg-threshold "
                "(and secagg-shares)"
            )
        return self

    def to_run_config(self) -> dict[str, RunConfigValue]:
        """Return the hyphenated run config Flower carries (the inverse of ``parse_run_config``).

        ``cutoff`` becomes an ISO 8601 string ("" when unset); every other value is a
        bool, int, float or str already.
        """
        out: dict[str, RunConfigValue] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif value is None:
                value = ""
            out[run_config_key(name)] = value
        return out

    @property
    def local_dp(self) -> bool:
        """Whether edges train with DP-SGD (``dp-mode`` local or both)."""
        return self.dp_mode in ("local", "both")

    @property
    def aggregation_rule(self) -> str:
        """The rule ``aggregation`` names, ``robust`` resolved for DP and secure aggregation."""
        if self.aggregation == "robust":
            return "fedavg" if self.central_dp or self.secure_aggregation else "trimmed-mean"
        return str(self.aggregation)

    @property
    def central_dp(self) -> bool:
        """Whether edges clip and the server adds client-level noise (central or both)."""
        return self.dp_mode in ("central", "both")


def run_config_key(field: str) -> str:
    """Return the hyphenated run-config key of a ``RunConfig`` field."""
    return field.replace("_", "-")


def known_keys() -> list[str]:
    """Return every run-config key (hyphenated), in declaration order."""
    return [run_config_key(f) for f in RunConfig.model_fields]


def parse_run_config(
    run_config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """Parse Flower's run config (plus overrides) into a ``RunConfig``.

    Parameters
    ----------
    run_config : Mapping[str, Any]
        ``context.run_config``: hyphenated keys (snake_case accepted too). Missing keys
        take the pyproject defaults.
    overrides : Mapping[str, Any] or None
        Values captured when the app was built; they win over ``run_config``.

    Returns
    -------
    RunConfig
        The validated configuration.

    Raises
    ------
    ValueError
        If a key is unknown (the message lists the known keys) or a value is invalid.
    """
    fields = set(RunConfig.model_fields)
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for source in (run_config, overrides or {}):
        for key, value in source.items():
            name = str(key).replace("-", "_")
            if name in fields:
                values[name] = value
            else:
                unknown.append(str(key))
    if unknown:
        raise ValueError(
            f"unknown run-config keys {sorted(unknown)}; known keys: {', '.join(known_keys())}"
        )
    return RunConfig.model_validate(values)
