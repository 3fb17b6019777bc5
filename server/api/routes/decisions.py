"""Decision routes: decide for a contact, list and read decisions, the policy, experiments.

``POST /decisions`` is for edges and agents: the person's pseudonym and the live signals of
the message in hand (never its text) in, the action with its rules, inputs, confidence and
explanation out. Officers and admins list decisions, read the policy in force (rules, the
human-fallback threshold and its measured error rate, experiments) and the experiments' KPIs;
edges report contact-outcome totals. Thin: the workflows are in ``server.decisions``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlmodel import col, select

from models.decisions import (
    DecisionOut,
    DecisionRequest,
    ExperimentReport,
    OutcomeUpload,
)

from ...decisions.kpis import experiment_names, experiment_report, store_outcomes
from ...decisions.route import decide, to_decision_out
from ...decisions.source import DecisionSetup
from ...errors import DatabaseError, NotFoundError
from ...tables.decision import DecisionRow
from ...tables.token import Role
from ..deps import (
    AuditDep,
    CatalogueDep,
    ClockDep,
    EdgePrincipal,
    MasterKeysDep,
    PurposesDep,
    SessionDep,
    require_role,
)

router = APIRouter(tags=["decisions"])

Deciders = Annotated[Any, Depends(require_role(Role.EDGE, Role.AGENT, Role.ADMIN))]
overseers = Depends(require_role(Role.COMPLIANCE_OFFICER, Role.ADMIN, Role.ANALYST))
TokenPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
IdPath = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="a decision id")]


async def get_decision_setup(request: Request) -> DecisionSetup:
    """Return the policy and arm key the lifespan loaded.

    Raises
    ------
    DatabaseError
        If the app was not started (lifespan not run).
    """
    setup: DecisionSetup | None = getattr(request.app.state, "decisions", None)
    if setup is None:
        raise DatabaseError("the application has no decision policy; was its lifespan run?")
    return setup


SetupDep = Annotated[DecisionSetup, Depends(get_decision_setup)]


@router.post("/decisions")
def post_decision(
    body: DecisionRequest,
    request: Request,
    session: SessionDep,
    principal: Deciders,
    setup: SetupDep,
    catalogue: CatalogueDep,
    purposes: PurposesDep,
    clock: ClockDep,
    master_keys: MasterKeysDep,
) -> DecisionOut:
    """Decide for one person now (routing by default) and explain the decision."""
    answer = decide(
        session=session, request=body, principal=principal, setup=setup, catalogue=catalogue,
        purposes=purposes, at=clock(), master_keys=master_keys,
    )  # fmt: skip
    flusher = getattr(request.app.state, "decision_audit", None)
    if flusher is not None:
        flusher.notify()  # its audit entry is appended with the next batch
    return answer


@router.get("/decisions", dependencies=[overseers])
def get_decisions(
    session: SessionDep,
    purpose: Annotated[str | None, Query(max_length=40)] = None,
    subject: Annotated[str | None, Query(pattern=r"^ps_[0-9a-f]{64}$")] = None,
    automated: Annotated[bool | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DecisionOut]:
    """List the newest decisions, optionally of one purpose or subject, automated or not."""
    query = select(DecisionRow).order_by(col(DecisionRow.decided_at).desc()).limit(limit)
    if purpose is not None:
        query = query.where(DecisionRow.purpose == purpose)
    if subject is not None:
        query = query.where(DecisionRow.subject == subject)
    if automated is not None:
        query = query.where(DecisionRow.automated == automated)
    return [to_decision_out(row) for row in session.exec(query).all()]


@router.get("/decisions/{decision_id}", dependencies=[overseers])
def get_decision(decision_id: IdPath, session: SessionDep) -> DecisionOut:
    """Return one decision with its rules, inputs and explanation."""
    row = session.get(DecisionRow, decision_id)
    if row is None:
        raise NotFoundError(kind="decision", ref=decision_id)
    return to_decision_out(row)


@router.get("/decision-policy", dependencies=[overseers])
def get_decision_policy(setup: SetupDep) -> dict[str, Any]:
    """Show the policy in force: rules (with what each reads), fallback and experiments."""
    policy = setup.policy
    rules = [
        {**json.loads(r.rule.model_dump_json()), "fields": list(r.fields),
         "signals": list(r.heads), "model_driven": r.model_driven}
        for r in policy.rules
    ]  # fmt: skip
    return {
        "version": policy.policy.version,
        "fallback": policy.fallback.model_dump(),
        "defaults": {
            k: v.model_dump(exclude_defaults=True) for k, v in policy.policy.defaults.items()
        },
        "rules": rules,
        "experiments": [e.model_dump() for e in policy.policy.experiments],
    }


@router.post("/edges/me/outcomes")
def post_outcomes(
    body: OutcomeUpload,
    session: SessionDep,
    principal: EdgePrincipal,
    audit: AuditDep,
    clock: ClockDep,
) -> dict[str, int]:
    """Store this edge's contact-outcome totals per experiment arm and day."""
    stored = store_outcomes(
        session=session, upload=body, principal=principal, audit=audit, at=clock()
    )
    return {"stored": stored}


@router.get("/experiments", dependencies=[overseers])
def get_experiments(session: SessionDep, setup: SetupDep) -> list[ExperimentReport]:
    """Report every experiment's per-arm KPIs with 95% intervals (small cells suppressed)."""
    return [
        experiment_report(session=session, experiment=name, policy=setup.policy)
        for name in experiment_names(session, setup.policy)
    ]


@router.get("/experiments/{name}", dependencies=[overseers])
def get_experiment(name: TokenPath, session: SessionDep, setup: SetupDep) -> ExperimentReport:
    """Report one experiment's per-arm KPIs with 95% intervals."""
    return experiment_report(session=session, experiment=name, policy=setup.policy)
