"""The run config's DP settings for local DP-SGD, and σ calibrated to a target ε."""

from __future__ import annotations

import logging

from models import RunConfig
from privacy import DPConfig
from privacy.calibration import calibrated_dp_config

logger = logging.getLogger(__name__)


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
        optimizer=config.local_optimizer,
        weight_decay=config.weight_decay,
        grad_sample_mode=config.grad_sample_mode,
    )


def resolve_dp_config(dp: DPConfig, *, config: RunConfig, num_examples: int) -> DPConfig:
    """Return the DP settings an edge trains with this round.

    With run-config ``target-epsilon`` > 0 and DP-SGD enabled, σ is calibrated to the
    run's whole plan (``num-server-rounds`` rounds) for this edge's ``num_examples``;
    otherwise ``dp`` is returned unchanged (σ = ``noise-multiplier``).

    Raises
    ------
    ValueError
        If the target cannot be met (see ``privacy.calibrate_noise_multiplier``).
    """
    if config.target_epsilon <= 0.0 or not dp.enabled:
        return dp
    return calibrated_dp_config(
        dp,
        target_epsilon=config.target_epsilon,
        num_examples=num_examples,
        rounds=config.num_server_rounds,
    )
