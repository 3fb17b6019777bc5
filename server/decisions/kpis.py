"""Experiment KPIs from edge aggregates, with 95% intervals and minimum cell sizes.

Edges send totals per experiment, arm and day (:class:`models.decisions.OutcomeTotals`);
a re-sent cell replaces the edge's earlier totals for it. The report sums an arm over days
and edges and gives rates with Wilson intervals (``scipy.stats.binomtest``) and means with
normal intervals from the sums of squares. An arm with fewer contacts than the experiment's
minimum cell size is reported as ``suppressed`` with its count only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

from scipy.stats import binomtest
from sqlmodel import Session, select

from models.decisions import ArmKpis, DecisionPolicy, ExperimentReport, OutcomeUpload

from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..principal import Principal
from ..tables.experiment_outcome import ExperimentOutcome

#: Minimum cell size of an experiment the policy does not (or no longer) name.
DEFAULT_MIN_CELL = 30
_Z = 1.959963984540054


def store_outcomes(
    *,
    session: Session,
    upload: OutcomeUpload,
    principal: Principal,
    audit: AuditSink,
    at: datetime,
) -> int:
    """Upsert the edge's totals (one row per experiment, arm, edge, day); audits; commits."""
    edge_id = principal.edge_id or principal.actor
    for cell in upload.totals:
        row = session.exec(
            select(ExperimentOutcome).where(
                ExperimentOutcome.experiment == cell.experiment, ExperimentOutcome.arm == cell.arm,
                ExperimentOutcome.edge_id == edge_id, ExperimentOutcome.day == cell.day,
            )
        ).first()  # fmt: skip
        values = cell.model_dump(exclude={"experiment", "arm", "day"})
        if row is None:
            row = ExperimentOutcome(
                experiment=cell.experiment, arm=cell.arm, edge_id=edge_id, day=cell.day,
                received_at=at, **values,
            )  # fmt: skip
        else:
            for name, value in values.items():
                setattr(row, name, value)
            row.received_at = at
        session.add(row)
    audit.record(
        actor=principal.actor, role=principal.role.value, action=AuditAction.OUTCOME_REPORT,
        purpose=None, subject=None, outcome=AuditOutcome.ACCEPTED,
        detail={"cells": len(upload.totals),
                "experiments": sorted({c.experiment for c in upload.totals})},
        at=at,
    )  # fmt: skip
    session.commit()
    return len(upload.totals)


def rate_ci(successes: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a proportion."""
    interval = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return (float(interval.low), float(interval.high))


def mean_ci(total: float, squares: float, n: int) -> tuple[float, tuple[float, float]]:
    """Mean and normal 95% interval from a sum and a sum of squares."""
    mean = total / n
    variance = max(squares / n - mean * mean, 0.0) * n / max(n - 1, 1)
    half = _Z * math.sqrt(variance / n)
    return mean, (mean - half, mean + half)


def _arm(name: str, rows: list[ExperimentOutcome], min_cell: int) -> ArmKpis:
    n = sum(r.contacts for r in rows)
    if n < min_cell:
        return ArmKpis(arm=name, contacts=n, suppressed=True)
    resolved = sum(r.resolved for r in rows)
    transferred = sum(r.transferred for r in rows)
    first, first_ci = mean_ci(
        sum(r.first_response_sum for r in rows), sum(r.first_response_sumsq for r in rows), n
    )
    value, value_ci = mean_ci(
        sum(r.order_value_sum for r in rows), sum(r.order_value_sumsq for r in rows), n
    )
    known = sum(r.retention_known for r in rows)
    retained = sum(r.retained for r in rows)
    return ArmKpis(
        arm=name, contacts=n, suppressed=False,
        resolution_rate=resolved / n, resolution_rate_ci=rate_ci(resolved, n),
        transfer_rate=transferred / n, transfer_rate_ci=rate_ci(transferred, n),
        first_response_s=first, first_response_s_ci=first_ci,
        order_value=value, order_value_ci=value_ci,
        retention_rate=retained / known if known >= min_cell else None,
        retention_rate_ci=rate_ci(retained, known) if known >= min_cell else None,
    )  # fmt: skip


def experiment_report(
    *, session: Session, experiment: str, policy: DecisionPolicy
) -> ExperimentReport:
    """Per-arm KPIs of ``experiment`` over every day and edge reported so far."""
    rows = session.exec(
        select(ExperimentOutcome).where(ExperimentOutcome.experiment == experiment)
    ).all()
    declared = next((e for e in policy.policy.experiments if e.name == experiment), None)
    min_cell = declared.min_cell if declared else DEFAULT_MIN_CELL
    by_arm: dict[str, list[ExperimentOutcome]] = defaultdict(list)
    for row in rows:
        by_arm[row.arm].append(row)
    order = [a.name for a in declared.arms] if declared else []
    names = order + sorted(set(by_arm) - set(order))
    return ExperimentReport(
        experiment=experiment, purpose=declared.purpose if declared else None,
        min_cell=min_cell, days=len({r.day for r in rows}), edges=len({r.edge_id for r in rows}),
        arms=[_arm(name, by_arm.get(name, []), min_cell) for name in names],
    )  # fmt: skip


def experiment_names(session: Session, policy: DecisionPolicy) -> list[str]:
    """Experiments the policy declares or edges reported, sorted."""
    reported = set(session.exec(select(ExperimentOutcome.experiment).distinct()).all())
    return sorted(reported | {e.name for e in policy.policy.experiments})
