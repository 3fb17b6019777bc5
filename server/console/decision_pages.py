"""The console's decision pages (GET): rules, decisions, alerts, experiments.

They show the decision layer to officers and admins, like the other compliance pages: the
policy in force (what each rule reads, whether a model drives it, the human-fallback threshold
with what it was measured to achieve), the newest decisions with who decided them, the batch
triggers and risk alerts, and the experiments' KPIs with their 95% intervals. Pages show
pseudonyms only, shortened, and never a rule's inputs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from models.decisions import ActionKind, FallbackReason

from ..api.deps import SessionDep
from ..decisions.kpis import experiment_names, experiment_report
from ..decisions.source import DecisionSetup
from .decision_queries import (
    RISK_ALERT,
    decision_counts,
    decision_lines,
    pending_triggers,
    trigger_rows,
)
from .pages import purpose_label
from .web import ConsoleNotFoundError, OfficerDep, page_lang, render

#: Decisions (and alerts, and triggers) listed per page, newest first.
DECISION_PAGE_ROWS = 100
#: Action kinds the decisions page can filter on (``none``: no action could be taken).
KINDS = tuple(k.value for k in ActionKind) + ("none",)
#: Why a decision went to a human, as stored.
FALLBACKS = tuple(r.value for r in FallbackReason)


def _setup(request: Request) -> DecisionSetup:
    """Return the policy the server runs with (404 page when the app has none)."""
    setup: DecisionSetup | None = getattr(request.app.state, "decisions", None)
    if setup is None:
        raise ConsoleNotFoundError()
    return setup


def _labels(request: Request) -> dict[str, Any]:
    """Template helpers shared by the decision pages."""
    lang = page_lang(request)
    return {"label": lambda p: purpose_label(p, lang)}


def _rules(request: Request, user: OfficerDep) -> HTMLResponse:
    """Render the policy in force: rules, defaults, the fallback threshold, experiments."""
    policy = _setup(request).policy
    rules = sorted(policy.rules, key=lambda r: (r.rule.purpose, -r.rule.priority, r.rule.id))
    context = {
        **_labels(request),
        "version": policy.policy.version,
        "rules": rules,
        "defaults": sorted(policy.policy.defaults.items()),
        "fallback": policy.fallback,
        "experiments": policy.policy.experiments,
    }
    return render(request, "rules.html", context, user=user)


def _decisions(
    request: Request,
    db: SessionDep,
    user: OfficerDep,
    kind: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """Render the newest decisions, counts per action kind and the share a human decided."""
    chosen = kind if kind in KINDS else None
    context = {
        **_labels(request),
        "decisions": decision_lines(session=db, action_kind=chosen, limit=DECISION_PAGE_ROWS),
        "counts": decision_counts(session=db),
        "kinds": KINDS,
        "kind": chosen or "",
        "limit": DECISION_PAGE_ROWS,
    }
    return render(request, "decisions.html", context, user=user)


def _alerts(request: Request, db: SessionDep, user: OfficerDep) -> HTMLResponse:
    """Render batch triggers (delivered or pending) and risk-alert decisions."""
    context = {
        **_labels(request),
        "triggers": trigger_rows(session=db, limit=DECISION_PAGE_ROWS),
        "pending": pending_triggers(session=db),
        "alerts": decision_lines(session=db, action_kind=RISK_ALERT, limit=DECISION_PAGE_ROWS),
        "limit": DECISION_PAGE_ROWS,
    }
    return render(request, "alerts.html", context, user=user)


def _experiments(request: Request, db: SessionDep, user: OfficerDep) -> HTMLResponse:
    """Render every experiment's per-arm KPIs with 95% intervals (small cells suppressed)."""
    policy = _setup(request).policy
    declared = {e.name: e for e in policy.policy.experiments}
    reports = [
        experiment_report(session=db, experiment=name, policy=policy)
        for name in experiment_names(db, policy)
    ]
    context = {**_labels(request), "reports": reports, "declared": declared}
    return render(request, "experiments.html", context, user=user)


def build_decision_pages_router() -> APIRouter:
    """Return the router of the decision pages (mounted under ``/console``).

    Returns
    -------
    APIRouter
        Rules, decisions, alerts, experiments.
    """
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    router.add_api_route("/rules", _rules, methods=["GET"])
    router.add_api_route("/decisions", _decisions, methods=["GET"])
    router.add_api_route("/alerts", _alerts, methods=["GET"])
    router.add_api_route("/experiments", _experiments, methods=["GET"])
    return router
