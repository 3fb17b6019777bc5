"""The console's pages (GET): login, overview, consent, requests, audit, budget, identity, models.

Routes stay thin: they read query parameters, call :mod:`server.console.queries` and render a
template. Looking a subject up is the only page view that is audited (it shows one person's
consent history); aggregate pages are not.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import HTMLResponse

from consent import (
    LABELS,
    PSEUDONYM_PATTERN,
    Purpose,
    PurposeRegistry,
    RequestState,
    receipt_id,
)
from consent import load_default_purposes as _load_purposes
from models import METRIC_EVAL_ACCURACY, METRIC_EVAL_AUC, METRIC_EVAL_LOSS, LearningTask

from ..api.deps import AuditDep, ClockDep, SessionDep, SettingsDep, get_engine
from ..audit.events import AuditAction, AuditOutcome
from ..audit.principal_action import audit_action
from ..crud.model_registry import list_versions
from ..identity.encodings import pending_reviews
from ..identity.governance import decisions_about
from ..identity.graph import hub_tokens, members_of, person_of, persons_page
from ..tables.dsr import DataSubjectRequest
from .charts import PALETTE, Line, line_chart
from .coverage_cache import CoverageCache
from .i18n import translator
from .queries import (
    AuditFilter,
    audit_page,
    budget_series,
    count_subjects,
    edge_rows,
    notice_rows,
    request_page,
    subject_history,
)
from .web import ConsoleNotFoundError, OfficerDep, page_lang, render

#: Name of the double-submit cookie that protects the login form.
LOGIN_CSRF_COOKIE = "console_login_csrf"
_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)


@functools.lru_cache(maxsize=1)
def purposes() -> PurposeRegistry:
    """Return the shipped purpose registry (loaded once)."""
    return _load_purposes()


def purpose_label(purpose: str, lang: str) -> str:
    """Return a purpose's label in ``lang`` (its name if unknown)."""
    try:
        zh, en = LABELS[Purpose(purpose)]
    except ValueError:
        return purpose
    return str(zh if lang == "zh" else en)


def _parse_date(value: str | None) -> datetime | None:
    """Parse ``YYYY-MM-DD`` (UTC midnight) or ISO text; ``None`` for empty or invalid."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _login(request: Request) -> HTMLResponse:
    """Render the login page with a fresh double-submit CSRF cookie."""
    token = secrets.token_urlsafe(24)
    failed = request.query_params.get("failed") == "1"
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "failed": failed},
        user=None,
        status_code=401 if failed else 200,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=900, httponly=True, samesite="strict", path="/console"
    )
    return response


def _coverage(
    request: Request, db: SessionDep, clock: ClockDep, background: BackgroundTasks
) -> dict[str, Any]:
    """Return the template values of the (cached) consent coverage."""
    cache: CoverageCache = request.app.state.console_coverage
    snapshot, refreshing = cache.get(
        db=db, engine=get_engine(request), clock=clock, background=background
    )
    return {
        "coverage": snapshot.rows if snapshot is not None else [],
        "coverage_by": {c.purpose.value: c for c in snapshot.rows} if snapshot else {},
        "coverage_at": snapshot.computed_at if snapshot is not None else None,
        "coverage_refreshing": refreshing,
    }


def _overview(
    request: Request,
    db: SessionDep,
    clock: ClockDep,
    user: OfficerDep,
    background: BackgroundTasks,
) -> HTMLResponse:
    """Render the overview: edges, subjects, coverage, open requests, audit status, budgets."""
    now = clock()
    lang = page_lang(request)
    context = {
        **_coverage(request, db, clock, background),
        "edges": edge_rows(session=db, at=now),
        "subjects": count_subjects(session=db),
        "requests": request_page(session=db, open_only=True, limit=10),
        "verify": request.app.state.console_verify.snapshot(),
        "budgets": budget_series(session=db),
        "label": lambda p: purpose_label(p, lang),
        "now": now,
    }
    return render(request, "overview.html", context, user=user)


def _consent(
    request: Request,
    db: SessionDep,
    clock: ClockDep,
    user: OfficerDep,
    audit: AuditDep,
    background: BackgroundTasks,
    subject: Annotated[str | None, Query(max_length=80)] = None,
) -> HTMLResponse:
    """Render purposes, notices, renewal counts and (optionally) one subject's history."""
    now = clock()
    lang = page_lang(request)
    rows = notice_rows(session=db)
    history = None
    bad_subject = False
    if subject:
        if _PSEUDONYM.fullmatch(subject):
            history = subject_history(session=db, subject=subject)
            outcome = AuditOutcome.ACCEPTED if history else AuditOutcome.NOT_FOUND
            audit_action(
                db,
                audit,
                user.principal,
                action=AuditAction.CONSOLE_LOOKUP,
                at=now,
                outcome=outcome,
                subject=subject,
                detail={"events": len(history)},
            )
        else:
            bad_subject = True
    context = {
        **_coverage(request, db, clock, background),
        "purposes": purposes().purposes,
        "notices": rows,
        "subject": subject if history is not None else None,
        "history": history,
        "bad_subject": bad_subject,
        "published": request.query_params.get("published"),
        "label": lambda p: purpose_label(p, lang),
        "receipt_of": receipt_id,
    }
    return render(request, "consent.html", context, user=user)


def _requests(
    request: Request,
    db: SessionDep,
    user: OfficerDep,
    state: Annotated[str | None, Query(max_length=20)] = None,
    due_before: Annotated[str | None, Query(max_length=40)] = None,
    after: Annotated[str | None, Query(max_length=120)] = None,
) -> HTMLResponse:
    """Render the requests queue, filtered by state and due date, one keyset page."""
    chosen = RequestState(state) if state in {s.value for s in RequestState} else None
    try:
        page = request_page(
            session=db,
            state=chosen,
            open_only=not state,
            due_before=_parse_date(due_before),
            after=after,
        )
    except ValueError:
        page = request_page(
            session=db, state=chosen, open_only=not state, due_before=_parse_date(due_before)
        )
    context = {
        "page": page,
        "approvals": {row.id: len(json.loads(row.approvals_json)) for row in page.rows},
        "states": [s.value for s in RequestState],
        "state": chosen.value if chosen else "",
        "due_before": due_before or "",
    }
    return render(request, "requests.html", context, user=user)


def _request_detail(
    request: Request, request_id: str, db: SessionDep, clock: ClockDep, user: OfficerDep
) -> HTMLResponse:
    """Render one request with its approvals, result and the actions its state allows."""
    row = db.get(DataSubjectRequest, request_id)
    if row is None:
        raise ConsoleNotFoundError()
    context: dict[str, Any] = {
        "row": row,
        "approvals": json.loads(row.approvals_json),
        "result": json.loads(row.result_json),
        "overdue": row.due_at < clock() and row.state not in ("completed", "rejected"),
        "done": request.query_params.get("done"),
    }
    return render(request, "request.html", context, user=user)


def _audit(
    request: Request,
    db: SessionDep,
    user: OfficerDep,
    action: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=40)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """Render one newest-first page of the audit log, with filters and the verify status."""
    filters = AuditFilter(action=action or None, actor=actor or None, outcome=outcome or None)
    context = {
        "page": audit_page(session=db, filters=filters, before=before),
        "filters": filters,
        "actions": [a.value for a in AuditAction],
        "outcomes": [o.value for o in AuditOutcome],
        "verify": request.app.state.console_verify.snapshot(),
        "started": request.query_params.get("started"),
    }
    return render(request, "audit.html", context, user=user)


def _budget(request: Request, db: SessionDep, user: OfficerDep) -> HTMLResponse:
    """Render each edge's ε over its releases, one chart per model."""
    lang = page_lang(request)
    t = translator("zh" if lang == "zh" else "en")
    series = budget_series(session=db)
    charts = []
    for model in sorted({s.model for s in series}):
        members = [s for s in series if s.model == model]
        budgets = [s.budget for s in members if s.budget]
        svg = line_chart(
            [Line(f"{s.edge_name} ({s.channel})", s.points) for s in members],
            x_label=t("budget.round"),
            y_label=t("budget.epsilon"),
            limit=min(budgets) if budgets else None,
            limit_label=t("budget.limit"),
        )
        charts.append({"model": model, "svg": svg, "series": members})
    return render(request, "budget.html", {"charts": charts, "palette": PALETTE}, user=user)


#: Versions listed on the model page, newest first (the API lists up to 500).
MODEL_PAGE_VERSIONS = 100
#: Evaluation metrics the model page shows per version, when the round reported them.
KEY_METRICS = (METRIC_EVAL_AUC, METRIC_EVAL_ACCURACY, METRIC_EVAL_LOSS)


def _models(
    request: Request,
    db: SessionDep,
    user: OfficerDep,
    model: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Render the registry's newest versions (model, version, run, round, ε, metrics)."""
    names = list(get_args(LearningTask))
    chosen = model if model in names else None
    context = {
        "versions": list_versions(session=db, model=chosen, limit=MODEL_PAGE_VERSIONS),
        "model_names": names,
        "model": chosen or "",
        "key_metrics": KEY_METRICS,
    }
    return render(request, "models.html", context, user=user)


#: Persons listed on the identity page (the API pages through all of them).
IDENTITY_PAGE_PERSONS = 50


def _identity(
    request: Request,
    db: SessionDep,
    clock: ClockDep,
    user: OfficerDep,
    audit: AuditDep,
    settings: SettingsDep,
    subject: Annotated[str | None, Query(max_length=80)] = None,
) -> HTMLResponse:
    """Render persons, the review queue, hubs and (optionally) one pseudonym's person."""
    persons = persons_page(db, limit=IDENTITY_PAGE_PERSONS + 1)
    context: dict[str, Any] = {
        "persons": persons[:IDENTITY_PAGE_PERSONS],
        "more": len(persons) > IDENTITY_PAGE_PERSONS,
        "linked": sum(len(m) for _, m in persons[:IDENTITY_PAGE_PERSONS]),
        "reviews": pending_reviews(db, limit=100),
        "hubs": hub_tokens(db, hub_limit=settings.identity_hub_limit),
        "subject": None,
        "done": request.query_params.get("done"),
    }
    if subject and _PSEUDONYM.fullmatch(subject):
        members = members_of(db, subject)
        audit_action(
            db, audit, user.principal, action=AuditAction.CONSOLE_LOOKUP, at=clock(),
            outcome=AuditOutcome.ACCEPTED, subject=subject,
            detail={"identity": True, "pseudonyms": len(members)},
        )  # fmt: skip
        context |= {
            "subject": subject,
            "person": person_of(db, subject),
            "members": members,
            "decisions": decisions_about(db, members),
        }
    return render(request, "identity.html", context, user=user)


def build_pages_router() -> APIRouter:
    """Return the router of the console's GET pages (mounted under ``/console``).

    Returns
    -------
    APIRouter
        Login, overview, consent, requests, one request, audit, privacy budget, identity,
        model versions.
    """
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    router.add_api_route("/login", _login, methods=["GET"])
    router.add_api_route("/", _overview, methods=["GET"])
    router.add_api_route("/consent", _consent, methods=["GET"])
    router.add_api_route("/requests", _requests, methods=["GET"])
    router.add_api_route("/requests/{request_id}", _request_detail, methods=["GET"])
    router.add_api_route("/audit", _audit, methods=["GET"])
    router.add_api_route("/budget", _budget, methods=["GET"])
    router.add_api_route("/identity", _identity, methods=["GET"])
    router.add_api_route("/models", _models, methods=["GET"])
    return router
