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

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

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
