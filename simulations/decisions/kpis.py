"""KPIs of one policy's run with 95% intervals, and paired differences against a baseline.

- ``transfer_rate``: share of contacts moved on after their first handler (an agent's
  transfer or self-service handing over to a human) — the seeds' transfer-to-human rate;
- ``resolution_rate``: share settled by the first handler without a transfer (first-contact
  resolution, FCR);
- ``first_response_s``: mean seconds from arrival to the first answer (the bot's or an
  agent's).

Rates carry Wilson score intervals (``scipy.stats.binomtest``), the mean a bootstrap BCa
interval (``scipy.stats.bootstrap``, seeded). The intervals treat contacts as independent;
waiting times within a day are correlated (a busy hour delays everyone in it), so the
interval of ``first_response_s`` is narrower than a day-level one would be. Because every
policy sees the same contacts with the same draws, differences against the baseline are
paired: ``vs_baseline`` gives each rate's difference with a normal interval of the per-contact
differences.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest, bootstrap

from .queueing import CentreRun, ContactOutcome
from .routers import Routing

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
_Z = 1.959963984540054


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (``(0, 1)`` when ``n`` is 0)."""
    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(successes, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return (round(float(ci.low), 6), round(float(ci.high), 6))


def mean_interval(values: Sequence[float], *, seed: int) -> tuple[float, float]:
    """95% bootstrap (BCa) interval of a mean; a point interval when the values are constant."""
    data = np.asarray(values, dtype=float)
    if len(data) < 2 or np.all(data == data[0]):
        value = float(data[0]) if len(data) else math.nan
        return (round(value, 3), round(value, 3))
    result = bootstrap(
        (data,),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return (round(float(ci.low), 3), round(float(ci.high), 3))


def policy_kpis(
    name: str, run: CentreRun, routings: Sequence[Routing], *, seed: int
) -> dict[str, Any]:
    """Return the KPIs of one policy, with intervals, routing mix and load.

    Parameters
    ----------
    name : str
        The policy's name.
    run : CentreRun
        Its outcomes (one per contact) and occupancy.
    routings : Sequence[Routing]
        Its routing of each contact, in the same order.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict[str, Any]
        ``policy``, ``n``, each KPI with ``<kpi>_ci``, and details.
    """
    outcomes = run.outcomes
    n = len(outcomes)
    transfers = sum(o.transferred for o in outcomes)
    resolved = sum(o.resolved_first_contact for o in outcomes)
    eventually = sum(o.resolved for o in outcomes)
    first = [o.first_response_s for o in outcomes]
    waits = [o.agent_wait_s for o in outcomes if o.first_handler != "self_service"]
    routed = Counter(o.routed_to for o in outcomes)
    by_route: dict[str, list[float]] = {}
    for o in outcomes:
        by_route.setdefault(o.routed_to, []).append(o.first_response_s)
    return {
        "policy": name,
        "n": n,
        "transfer_rate": round(transfers / n, 6) if n else 0.0,
        "transfer_rate_ci": list(wilson_interval(transfers, n)),
        "resolution_rate": round(resolved / n, 6) if n else 0.0,
        "resolution_rate_ci": list(wilson_interval(resolved, n)),
        "first_response_s": round(float(np.mean(first)), 3) if n else 0.0,
        "first_response_s_ci": list(mean_interval(first, seed=seed)),
        "first_response_p90_s": round(float(np.quantile(first, 0.9)), 3) if n else 0.0,
        "eventual_resolution_rate": round(eventually / n, 6) if n else 0.0,
        "eventual_resolution_rate_ci": list(wilson_interval(eventually, n)),
        "mean_agent_wait_s": round(float(np.mean(waits)), 3) if waits else 0.0,
        "occupancy": round(run.occupancy, 4),
        "automated_rate": round(sum(r.automated for r in routings) / n, 6) if n else 0.0,
        "fallback_rate": round(sum(r.fallback for r in routings) / n, 6) if n else 0.0,
        "routed": {k: round(v / n, 6) for k, v in sorted(routed.items())},
        "first_response_s_by_route": {
            k: round(float(np.mean(v)), 3) for k, v in sorted(by_route.items())
        },
        "senior_handled": round(sum(o.senior for o in outcomes) / n, 6) if n else 0.0,
    }


def _paired(a: Sequence[bool], b: Sequence[bool]) -> dict[str, Any]:
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean = float(d.mean())
    half = _Z * float(d.std(ddof=1)) / math.sqrt(len(d)) if len(d) > 1 else math.inf
    return {"difference": round(mean, 6), "ci": [round(mean - half, 6), round(mean + half, 6)]}


def paired_differences(
    outcomes: Sequence[ContactOutcome], baseline: Sequence[ContactOutcome]
) -> dict[str, Any]:
    """Each rate's difference (policy minus baseline) over the same contacts, with a 95% interval.

    Raises
    ------
    ValueError
        If the two runs are not over the same contacts in the same order.
    """
    if [o.contact_id for o in outcomes] != [o.contact_id for o in baseline]:
        raise ValueError("paired differences need the same contacts in the same order")
    return {
        "transfer_rate": _paired(
            [o.transferred for o in outcomes], [o.transferred for o in baseline]
        ),
        "resolution_rate": _paired(
            [o.resolved_first_contact for o in outcomes],
            [o.resolved_first_contact for o in baseline],
        ),
    }
