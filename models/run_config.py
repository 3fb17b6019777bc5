"""The Flower run configuration, parsed once at the entry points.

``RunConfig`` mirrors ``[tool.flwr.app.config]`` in ``pyproject.toml`` key for key, with
the same defaults. Flower's keys are hyphenated; ``parse_run_config`` is the one place that
maps them to snake_case. ``run_simulation`` passes an empty run config, so apps also accept
overrides captured when they are built; overrides win over the run config.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

#: Where differential privacy is applied in a federated run (run-config ``dp-mode``):
#: ``local`` = DP-SGD on each edge (user-level on that edge, accounted in the edge's ledger);
#: ``central`` = client-level DP: edges clip their update, the server adds Gaussian noise to
#: the average and accounts it (Flower's client-side fixed-clipping wrapper);
#: ``both`` = the two together; ``off`` = no noise at all (experiments; the ledger shows ε = ∞).
DPMode = Literal["local", "central", "both", "off"]


class RunConfig(BaseModel):
    """Run-time configuration of a federated training run (both apps read it).

    Parameters
    ----------
    num_server_rounds : int
        Federated rounds (train + evaluate each).
    local_epochs : int
        Passes over the local data per round on each edge.
    batch_size : int
        Expected (Poisson) batch size of local DP-SGD; sample rate = batch_size / n.
    learning_rate : float
        Local SGD learning rate.
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
        Server database recording training runs; empty = do not record.
    seed : int
        Seeds model initialisation, data order and Poisson sampling (never DP noise).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_server_rounds: int = Field(default=3, ge=1)
    local_epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=2.0, gt=0.0)
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
    server_learning_rate: float = Field(default=2.0, gt=0.0)
    server_momentum: float = Field(default=0.5, ge=0.0, lt=1.0)
    fraction_train: float = Field(default=1.0, ge=0.0, le=1.0)
    min_nodes: int = Field(default=2, ge=1)
    data_dir: str = ""
    database_url: str = ""
    seed: int = 0

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
