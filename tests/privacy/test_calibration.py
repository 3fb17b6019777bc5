"""σ calibrated to a target ε over a whole federated round plan."""

from __future__ import annotations

import pytest

from privacy import DPConfig, compute_epsilon
from privacy.calibration import (
    calibrate_noise_multiplier,
    calibrated_dp_config,
    plan_steps,
    planned_schedule,
)


@pytest.mark.parametrize("target", [1.0, 3.0, 8.0])
def test_calibrated_sigma_meets_the_target_tightly(target: float) -> None:
    sigma = calibrate_noise_multiplier(
        target_epsilon=target, sample_rate=0.05, steps=400, delta=1e-5, accountant="rdp"
    )
    spent = compute_epsilon([(sigma, 0.05, 400)], delta=1e-5, accountant="rdp")
    below = compute_epsilon([(sigma * 0.98, 0.05, 400)], delta=1e-5, accountant="rdp")
    assert spent <= target < below


def test_smaller_targets_need_more_noise() -> None:
    sigmas = [
        calibrate_noise_multiplier(
            target_epsilon=t, sample_rate=0.1, steps=100, delta=1e-5, accountant="rdp"
        )
        for t in (1.0, 4.0, 16.0)
    ]
    assert sigmas[0] > sigmas[1] > sigmas[2]


def test_unreachable_target_and_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="raise the target"):
        calibrate_noise_multiplier(
            target_epsilon=1e-6, sample_rate=1.0, steps=10_000, delta=1e-5, accountant="rdp"
        )
    with pytest.raises(ValueError, match="target_epsilon"):
        calibrate_noise_multiplier(target_epsilon=0.0, sample_rate=0.1, steps=1, delta=1e-5)
    with pytest.raises(ValueError, match="steps"):
        calibrate_noise_multiplier(target_epsilon=1.0, sample_rate=0.1, steps=0, delta=1e-5)


def test_plan_counts_every_round_and_smaller_edges_get_more_noise() -> None:
    dp = DPConfig(batch_size=64, local_epochs=2, accountant="rdp")
    q, steps = plan_steps(640, dp=dp, rounds=5)
    assert q == pytest.approx(0.1) and steps == 10 * 2 * 5
    small = calibrated_dp_config(dp, target_epsilon=4.0, num_examples=200, rounds=5)
    large = calibrated_dp_config(dp, target_epsilon=4.0, num_examples=2000, rounds=5)
    assert small.noise_multiplier > large.noise_multiplier
    assert large.batch_size == 64 and large.local_epochs == 2


@pytest.mark.parametrize(
    ("n", "batch", "epochs", "expected"),
    [(113, 32, 1, (0.25, 4)), (10, 32, 2, (1.0, 2)), (64, 32, 3, (0.5, 6))],
)
def test_planned_schedule_matches_opacus_poisson_rate(
    n: int, batch: int, epochs: int, expected: tuple[float, int]
) -> None:
    assert planned_schedule(n, dp=DPConfig(batch_size=batch, local_epochs=epochs)) == expected


def test_planned_schedule_refuses_no_examples() -> None:
    with pytest.raises(ValueError, match="num_examples"):
        planned_schedule(0, dp=DPConfig())
