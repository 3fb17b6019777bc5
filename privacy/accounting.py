"""ε of a history of Poisson-subsampled Gaussian releases, by one of three accountants.

A history is a sequence of ``(σ, q, steps)`` entries: ``steps`` DP-SGD steps with noise
multiplier σ (noise std / clipping norm) and Poisson sampling rate q. Every accountant
here assumes the **add/remove-one** neighbouring relation and **Poisson** sampling.

* ``rdp`` — Opacus's ``RDPAccountant`` on the history as given (conservative).
* ``prv`` — Opacus's ``PRVAccountant``; the upper end of its error interval (capped by
  the RDP bound, which is also returned when ε is beyond PRV's numerical range).
* ``pld`` — Google ``dp_accounting`` privacy-loss distributions (pessimistic estimate).

Entries with the same (σ, q) are merged before PRV/PLD accounting (composition does not
depend on order, and fewer entries are much faster); RDP gets the history unchanged so it
equals Opacus's own accountant exactly.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

#: Names of the supported accountants.
AccountantName = Literal["prv", "rdp", "pld"]
ACCOUNTANTS: tuple[AccountantName, ...] = ("prv", "rdp", "pld")
#: Discretisation of the PLD (pessimistic; about 0.01 above the 1e-4 default, 10x faster).
PLD_DISCRETIZATION = 1e-3
#: Above this RDP ε the PRV discretisation becomes slow (~1 min) and unstable; the RDP ε,
#: itself a valid upper bound, is returned instead.
PRV_RDP_LIMIT = 500.0

History = Sequence[tuple[float, float, int]]


def validate_history(history: History) -> list[tuple[float, float, int]]:
    """Check a history and return it as a list of plain tuples.

    Raises
    ------
    ValueError
        If σ < 0, q outside (0, 1] or steps < 0 in any entry.
    """
    checked: list[tuple[float, float, int]] = []
    for index, (sigma, q, steps) in enumerate(history):
        if not (sigma >= 0.0 and math.isfinite(sigma)):
            raise ValueError(f"history[{index}]: noise multiplier must be finite and >= 0")
        if not 0.0 < q <= 1.0:
            raise ValueError(f"history[{index}]: sample rate must be in (0, 1]")
        if int(steps) != steps or steps < 0:
            raise ValueError(f"history[{index}]: steps must be a non-negative integer")
        checked.append((float(sigma), float(q), int(steps)))
    return checked


def merge_history(history: History) -> list[tuple[float, float, int]]:
    """Merge entries with equal (σ, q) by adding their steps; drop zero-step entries."""
    merged: dict[tuple[float, float], int] = {}
    for sigma, q, steps in history:
        if steps > 0:
            merged[(sigma, q)] = merged.get((sigma, q), 0) + steps
    return [(sigma, q, steps) for (sigma, q), steps in merged.items()]


@contextmanager
def _quiet_numerics() -> Iterator[None]:
    """Silence accountants' floating-point and alpha-range warnings (results are checked)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.filterwarnings("ignore", message="Optimal order is the")
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        yield


@lru_cache(maxsize=512)
def _unit_rdp(q: float, sigma: float) -> tuple[float, ...]:
    """RDP of one step at Opacus's default orders (slow for large σ, so memoised)."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis import rdp as analysis

    orders = RDPAccountant.DEFAULT_ALPHAS
    return tuple(
        float(v) for v in analysis.compute_rdp(q=q, noise_multiplier=sigma, steps=1, orders=orders)
    )


def _rdp(history: list[tuple[float, float, int]], delta: float) -> float:
    """Opacus ``RDPAccountant.get_epsilon`` on ``history``, bit for bit, with memoised steps.

    Opacus sums ``compute_rdp(q, σ, steps)`` = (per-step RDP vector) × steps over the
    entries in order and converts at its default orders; this does the same arithmetic.
    """
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis import rdp as analysis

    total = sum(np.array(_unit_rdp(q, sigma)) * steps for sigma, q, steps in history)
    epsilon, _ = analysis.get_privacy_spent(
        orders=RDPAccountant.DEFAULT_ALPHAS, rdp=total, delta=delta
    )
    return float(epsilon)


def _prv(history: list[tuple[float, float, int]], delta: float) -> float:
    from opacus.accountants import PRVAccountant

    accountant = PRVAccountant()
    accountant.history = list(history)
    return float(accountant.get_epsilon(delta=delta))


def _pld(history: list[tuple[float, float, int]], delta: float) -> float:
    import dp_accounting
    from dp_accounting.pld.pld_privacy_accountant import PLDAccountant

    accountant = PLDAccountant(
        neighboring_relation=dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE,
        value_discretization_interval=PLD_DISCRETIZATION,
    )
    for sigma, q, steps in history:
        event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
        accountant.compose(event, steps)
    return float(accountant.get_epsilon(delta))


def compute_epsilon(history: History, *, delta: float, accountant: AccountantName) -> float:
    """Return the cumulative ε of a history of Poisson-subsampled Gaussian releases.

    Parameters
    ----------
    history : Sequence[tuple[float, float, int]]
        ``(noise_multiplier σ, sample_rate q, steps)`` entries, composed in full.
    delta : float
        δ in (0, 1): the probability mass allowed to fail pure ε-DP for the whole history.
    accountant : {"prv", "rdp", "pld"}
        Accounting method (see the module docstring); all assume add/remove-one neighbours
        and Poisson sampling.

    Returns
    -------
    float
        Cumulative ε over every entry; ``0.0`` for an empty history (or only zero-step
        entries); ``inf`` if any entry with steps has σ = 0 (no noise, no guarantee).

    Raises
    ------
    ValueError
        If ``delta`` or an entry is out of range, or ``accountant`` is unknown.
    """
    if not 0.0 < delta < 1.0:
        raise ValueError("delta must be in (0, 1)")
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant {accountant!r}; known: {', '.join(ACCOUNTANTS)}")
    checked = [entry for entry in validate_history(history) if entry[2] > 0]
    if not checked:
        return 0.0
    if any(sigma == 0.0 for sigma, _, _ in checked):
        return math.inf
    with _quiet_numerics():
        if accountant == "rdp":
            return _rdp(checked, delta)
        merged = merge_history(checked)
        if accountant == "pld":
            return _pld(merged, delta)
        return _prv_or_rdp(checked, merged, delta)


def _prv_or_rdp(
    checked: list[tuple[float, float, int]],
    merged: list[tuple[float, float, int]],
    delta: float,
    prv: Callable[[list[tuple[float, float, int]], float], float] = _prv,
) -> float:
    """PRV ε, or the RDP ε when PRV is out of its numerical range (both upper bounds)."""
    rdp = _rdp(checked, delta)
    if rdp > PRV_RDP_LIMIT:
        logger.warning("ε is beyond PRV's range (RDP ε=%.1f); reporting the RDP bound", rdp)
        return rdp
    epsilon = prv(merged, delta)
    if not math.isfinite(epsilon):
        logger.warning("PRV accounting failed numerically; reporting the RDP bound")
        return rdp
    return min(epsilon, rdp)
