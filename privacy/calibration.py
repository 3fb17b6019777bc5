"""Planned DP-SGD schedules, and σ calibrated to a target ε for a whole federated round plan.

An edge that trains ``rounds`` rounds of ``local_epochs`` epochs over ``n`` examples with
expected batch size ``B`` takes, per round, ``ceil(n / B) · local_epochs`` steps at Poisson
sample rate ``q = 1 / ceil(n / B)`` (``planned_schedule``, as Opacus does).
``calibrate_noise_multiplier`` finds, by bisection on σ with ``privacy.compute_epsilon``
(the ledger's accountant), the smallest σ (to a relative tolerance) whose ε for the whole
plan is at most the target; the result is therefore a per-edge value: an edge with fewer
examples samples each one more often and needs more noise.

Results are pure functions of their numeric inputs and cached in the process, so every
round of a run (and every edge of equal size) gets the same σ without searching again.
Every ε here is the cumulative ε of the plan (all rounds), at δ, under add/remove-one
neighbouring and Poisson sampling.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from typing import Literal

from .accounting import compute_epsilon
from .config import DPConfig

logger = logging.getLogger(__name__)

#: Accountants ``privacy.compute_epsilon`` knows.
AccountantName = Literal["prv", "rdp", "pld"]

#: Bisection stops when the bracket's relative width falls below this.
DEFAULT_RELATIVE_TOLERANCE = 0.005
#: Search range of σ (noise std / clipping norm).
SIGMA_MIN, SIGMA_MAX = 0.05, 200.0
_MAX_ITERATIONS = 60


def planned_schedule(num_examples: int, *, dp: DPConfig) -> tuple[float, int]:
    """Return the (sample rate q, steps) one round of local DP-SGD takes on ``num_examples``.

    Matches Opacus's Poisson loader: q = 1 / ceil(n / batch_size) and ``local_epochs / q``
    steps (empty Poisson batches included).

    Parameters
    ----------
    num_examples : int
        Training examples (privacy units) on the edge; at least 1.
    dp : DPConfig
        Gives ``batch_size`` and ``local_epochs``.

    Returns
    -------
    tuple[float, int]
        q and the number of steps of one round.

    Raises
    ------
    ValueError
        If ``num_examples`` is below 1.
    """
    if num_examples < 1:
        raise ValueError("num_examples must be at least 1")
    batches = math.ceil(num_examples / dp.batch_size)
    return 1.0 / batches, batches * dp.local_epochs


def plan_steps(num_examples: int, *, dp: DPConfig, rounds: int) -> tuple[float, int]:
    """Return the sample rate q and total DP-SGD steps of an edge's whole round plan.

    Parameters
    ----------
    num_examples : int
        Training examples on the edge (one per subject for user-level DP).
    dp : DPConfig
        Gives ``batch_size`` and ``local_epochs``.
    rounds : int
        Federated rounds the edge may train in (all of them: a conservative plan when
        edges are sampled).

    Returns
    -------
    tuple[float, int]
        ``q`` and ``rounds × steps per round``.

    Raises
    ------
    ValueError
        If ``num_examples`` or ``rounds`` is below 1.
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    q, steps = planned_schedule(num_examples, dp=dp)
    return q, steps * rounds


@lru_cache(maxsize=1024)
def calibrate_noise_multiplier(
    *,
    target_epsilon: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: AccountantName = "prv",
    relative_tolerance: float = DEFAULT_RELATIVE_TOLERANCE,
) -> float:
    """Return the smallest σ (within tolerance) whose ε over the plan is at most the target.

    Parameters
    ----------
    target_epsilon : float
        Target cumulative ε of the whole plan (> 0).
    sample_rate : float
        Poisson sample rate q in (0, 1] (q = 1 with ``steps`` = rounds describes the
        server's client-level Gaussian releases without sampling amplification).
    steps : int
        Number of releases (DP-SGD steps) in the plan (>= 1).
    delta : float
        δ in (0, 1) of the guarantee.
    accountant : {"prv", "rdp", "pld"}
        Accountant, as in ``privacy.compute_epsilon``.
    relative_tolerance : float
        The returned σ is at most this much (relatively) above the exact solution.

    Returns
    -------
    float
        σ with ``compute_epsilon([(σ, q, steps)]) <= target_epsilon``.

    Raises
    ------
    ValueError
        If an argument is out of range, or the target cannot be met with σ <= 200.
    """
    if not (target_epsilon > 0.0 and math.isfinite(target_epsilon)):
        raise ValueError("target_epsilon must be a finite number > 0")
    if steps < 1:
        raise ValueError("steps must be at least 1")
    if relative_tolerance <= 0.0:
        raise ValueError("relative_tolerance must be > 0")

    def epsilon(sigma: float) -> float:
        return float(
            compute_epsilon(
                [(sigma, sample_rate, steps)],
                delta=delta,
                accountant=accountant,
            )
        )

    # 1. Bracket: ε falls as σ grows; low gives ε above the target, high at or below it.
    low, high = SIGMA_MIN, 1.0
    while epsilon(high) > target_epsilon:
        low, high = high, high * 2.0
        if high > SIGMA_MAX:
            raise ValueError(
                f"target ε {target_epsilon:g} needs σ > {SIGMA_MAX:g} for q={sample_rate:.4g} "
                f"and {steps} steps; raise the target, or train fewer steps"
            )
    if epsilon(low) <= target_epsilon:
        return low
    # 2. Bisection in log σ until the bracket is narrow.
    for _ in range(_MAX_ITERATIONS):
        if high / low - 1.0 <= relative_tolerance:
            break
        middle = math.sqrt(low * high)
        if epsilon(middle) > target_epsilon:
            low = middle
        else:
            high = middle
    logger.info(
        "calibrated sigma=%.4f for epsilon<=%.3g (q=%.4g, %d steps, delta=%.1e, %s)",
        high,
        target_epsilon,
        sample_rate,
        steps,
        delta,
        accountant,
    )
    return high


def calibrated_dp_config(
    dp: DPConfig, *, target_epsilon: float, num_examples: int, rounds: int
) -> DPConfig:
    """Return ``dp`` with σ calibrated so the edge's whole plan ends at ε <= target.

    Parameters
    ----------
    dp : DPConfig
        The edge's settings (batch size, local epochs, δ, accountant).
    target_epsilon : float
        Target cumulative ε of the run on this edge.
    num_examples : int
        The edge's training examples.
    rounds : int
        Rounds of the run.

    Returns
    -------
    DPConfig
        A copy with ``noise_multiplier`` set.

    Raises
    ------
    ValueError
        See ``calibrate_noise_multiplier`` and ``plan_steps``.
    """
    q, steps = plan_steps(num_examples, dp=dp, rounds=rounds)
    sigma = calibrate_noise_multiplier(
        target_epsilon=target_epsilon,
        sample_rate=q,
        steps=steps,
        delta=dp.delta,
        accountant=dp.accountant,
    )
    return dp.model_copy(update={"noise_multiplier": sigma})
