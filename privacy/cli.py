"""``fedprofile privacy epsilon``: ε of a DP-SGD schedule, from the command line."""

from __future__ import annotations

import json as json_module
import logging
from enum import StrEnum
from typing import Annotated

import typer

from .accounting import compute_epsilon

logger = logging.getLogger(__name__)


class AccountantChoice(StrEnum):
    """Accountants selectable on the command line."""

    PRV = "prv"
    RDP = "rdp"
    PLD = "pld"


def epsilon_command(
    noise_multiplier: Annotated[
        float,
        typer.Option(
            "--noise-multiplier", "-z", min=0.0, help="σ: noise std divided by the clipping norm."
        ),
    ],
    sample_rate: Annotated[
        float,
        typer.Option("--sample-rate", "-q", help="q: Poisson sampling rate per step, in (0, 1]."),
    ],
    steps: Annotated[int, typer.Option("--steps", "-n", min=0, help="Number of DP-SGD steps.")],
    delta: Annotated[
        float, typer.Option("--delta", "-d", help="δ of the (ε, δ) guarantee, in (0, 1).")
    ],
    accountant: Annotated[
        AccountantChoice,
        typer.Option("--accountant", "-a", help="Accountant: prv (tight), rdp, pld."),
    ] = AccountantChoice.PRV,
    json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
) -> None:
    """Compute the ε of STEPS DP-SGD steps with noise multiplier σ and sample rate q.

    Assumes Poisson sampling and add/remove-one neighbouring datasets (one example per
    subject gives user-level DP).
    """
    if not 0.0 < sample_rate <= 1.0:
        raise typer.BadParameter("must be in (0, 1]", param_hint="--sample-rate")
    if not 0.0 < delta < 1.0:
        raise typer.BadParameter("must be in (0, 1)", param_hint="--delta")
    epsilon = compute_epsilon(
        [(noise_multiplier, sample_rate, steps)], delta=delta, accountant=accountant.value
    )
    if json:
        typer.echo(
            json_module.dumps(
                {
                    "epsilon": epsilon if epsilon != float("inf") else None,
                    "infinite": epsilon == float("inf"),
                    "delta": delta,
                    "accountant": accountant.value,
                    "noise_multiplier": noise_multiplier,
                    "sample_rate": sample_rate,
                    "steps": steps,
                    "neighbouring": "add_remove_one",
                    "sampling": "poisson",
                }
            )
        )
        return
    typer.echo(
        f"ε = {epsilon:.4f} at δ = {delta:g} ({accountant.value}; σ = {noise_multiplier:g}, "
        f"q = {sample_rate:g}, {steps} steps; Poisson sampling, add/remove-one)"
    )
