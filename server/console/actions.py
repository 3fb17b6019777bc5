"""The console's actions: login, logout, notices, requests, verify, downloads, identity.

Every POST checks the session's CSRF token and ends in a 303 redirect (post/redirect/get).
Every action is audited with the officer's actor string: the domain functions
(:mod:`server.crud.notice`, :mod:`server.crud.dsr`) audit their own effects; login, logout
and verify are audited here. Domain refusals (a state that does not allow the action, the same
officer approving twice) come back to the page as a translated message, not a stack trace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from consent import PSEUDONYM_PATTERN, NoticeDraft, Purpose

from ..api.deps import (
    AuditDep,
    CatalogueDep,
    ClockDep,
    ControllerDep,
    MasterKeysDep,
    PurposesDep,
    SessionDep,
    SettingsDep,
    SigningKeyDep,
    authenticate,
    get_engine,
)
from ..audit.checkpoint import CheckpointPolicy
from ..audit.events import AuditAction, AuditOutcome
from ..audit.export import export_range
from ..audit.parallel import resolve_workers
from ..audit.principal_action import audit_action
from ..crud.dsr import (
    approve_request,
    erasure_receipt,
    execute_request,
    export_request,
    reject_request,
    verify_request,
)
from ..crud.notice import publish_notice
from ..crud.receipt import signed_receipt
from ..errors import ConflictError, NotFoundError, ServerError
from ..identity.encodings import review_pair
from ..identity.governance import detach_subject, undo_decision
from .pages import LOGIN_CSRF_COOKIE
from .session import CONSOLE_ROLES, SESSION_COOKIE, SESSION_TTL, encode_session, new_session
from .web import (
    PREFIX,
    ConsoleForbiddenError,
    ConsoleNotFoundError,
    OfficerDep,
    check_csrf,
    redirect,
    render,
)

logger = logging.getLogger(__name__)

_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)

CsrfField = Annotated[str, Form(max_length=100)]


async def _login(
    request: Request,
    db: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=300)],
    login_csrf: CsrfField,
) -> Response:
    """Resolve the token; start a session for officers, refuse other roles with a 403 page."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not hmac.compare_digest(cookie.encode(), login_csrf.encode()):
        raise ConsoleForbiddenError("error.csrf")
    now = clock()
    try:
        principal = authenticate(
            request=request,
            session=db,
            settings=settings,
            token=token.strip(),
            at=now,
            audit=audit,
        )
    except ServerError:
        return RedirectResponse(f"{PREFIX}/login?failed=1", status_code=303)
    session = new_session(principal, at=now)
    allowed = principal.role in CONSOLE_ROLES
    audit_action(
        db,
        audit,
        principal,
        action=AuditAction.CONSOLE_LOGIN,
        at=now,
        outcome=AuditOutcome.ACCEPTED if allowed else AuditOutcome.REFUSED,
        detail={"role": principal.role.value},
    )
    if not allowed:
        raise ConsoleForbiddenError("error.forbidden")
    response = redirect("/")
    response.set_cookie(
        SESSION_COOKIE,
        encode_session(session, secret=request.app.state.console_secret),
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=settings.environment == "production",
        path=PREFIX,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response


async def _logout(
    db: SessionDep, audit: AuditDep, clock: ClockDep, user: OfficerDep, csrf: CsrfField
) -> Response:
    """End the session (the cookie is cleared; the signed value expires on its own)."""
    check_csrf(user, csrf)
    audit_action(db, audit, user.principal, action=AuditAction.CONSOLE_LOGOUT, at=clock())
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


async def _publish(
    request: Request,
    db: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    user: OfficerDep,
    csrf: CsrfField,
    version: Annotated[str, Form(max_length=40)],
    content_hash: Annotated[str, Form(max_length=64)] = "",
    text: Annotated[str, Form(max_length=100_000)] = "",
    url: Annotated[str, Form(max_length=500)] = "",
    language: Annotated[str, Form(max_length=20)] = "",
    material: Annotated[bool, Form()] = False,
) -> Response:
    """Publish a notice version for the purposes ticked in the form.

    The officer gives the notice text's SHA-256, or pastes the text and the hash is computed
    here (the text itself is not stored: it stays with the channels).
    """
    check_csrf(user, csrf)
    if not content_hash.strip() and text:
        content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    form = await request.form()
    chosen = [p for p in Purpose if form.get(f"purpose_{p.value}")]
    try:
        draft = NoticeDraft(
            version=version.strip(),
            purposes=tuple(chosen),
            material=material,
            content_hash=content_hash.strip().lower(),
            url=url.strip(),
            language=language.strip(),
        )
    except ValidationError:
        return _refused(request, user, "error.bad_input", status_code=422)
    try:
        _, renewals = publish_notice(
            session=db,
            draft=draft,
            principal=user.principal,
            audit=audit,
            at=clock(),
        )
    except ConflictError:
        db.rollback()
        return _refused(request, user, "error.conflict", status_code=409)
    request.app.state.console_coverage.invalidate()
    total = sum(renewals.values())
    return redirect(f"/consent?published={draft.version}&renewals={total}")


async def _verify(
    request: Request,
    background: BackgroundTasks,
    db: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
    signing_key: SigningKeyDep,
    user: OfficerDep,
    csrf: CsrfField,
) -> Response:
    """Start an audit-log verification in the background (one at a time)."""
    check_csrf(user, csrf)
    state = request.app.state.console_verify
    started = state.start()
    audit_action(
        db,
        audit,
        user.principal,
        action=AuditAction.CONSOLE_VERIFY,
        at=clock(),
        outcome=AuditOutcome.ACCEPTED if started else AuditOutcome.CONFLICT,
    )
    if started:
        background.add_task(
            state.run,
            get_engine(request),
            clock,
            trusted_keys=[signing_key.verify_key],
            checkpoint_every=settings.audit_checkpoint_every,
            workers=resolve_workers(settings.audit_verify_workers),
        )
    return redirect("/audit?started=1")


async def _decide(
    request: Request,
    request_id: str,
    action: str,
    db: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    user: OfficerDep,
    catalogue: CatalogueDep,
    signing_key: SigningKeyDep,
    master_keys: MasterKeysDep,
    csrf: CsrfField,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Verify, approve, reject (with a reason) or carry out one request."""
    check_csrf(user, csrf)
    common: dict[str, Any] = {
        "session": db,
        "request_id": request_id,
        "principal": user.principal,
        "audit": audit,
        "at": clock(),
    }
    try:
        if action == "verify":
            verify_request(**common)
        elif action == "approve":
            approve_request(**common)
        elif action == "reject":
            if not reason.strip():
                return _refused(request, user, "error.bad_input", status_code=422)
            reject_request(**common, reason=reason.strip())
        elif action == "execute":
            execute_request(
                **common, catalogue=catalogue, signing_key=signing_key, master_keys=master_keys
            )
        else:
            raise ConsoleNotFoundError()
    except NotFoundError:
        db.rollback()
        raise ConsoleNotFoundError() from None
    except ServerError:  # a state, rule or validation refusal of the domain layer
        db.rollback()
        return _refused(request, user, "error.conflict", status_code=409)
    return redirect(f"/requests/{request_id}?done={action}")


def _download(document: dict[str, Any], filename: str) -> Response:
    """Return a JSON attachment."""
    body = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


async def _receipt(request_id: str, db: SessionDep, user: OfficerDep) -> Response:
    """Download the signed erasure receipt of a completed erasure."""
    try:
        receipt = erasure_receipt(session=db, request_id=request_id, principal=user.principal)
    except (NotFoundError, ConflictError):
        raise ConsoleNotFoundError() from None
    return _download(receipt, f"erasure-receipt-{request_id[:8]}.json")


async def _export(
    request_id: str,
    db: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    user: OfficerDep,
    catalogue: CatalogueDep,
    signing_key: SigningKeyDep,
    master_keys: MasterKeysDep,
) -> Response:
    """Download the signed access/export document of a completed access request (audited)."""
    try:
        document = export_request(
            session=db,
            request_id=request_id,
            principal=user.principal,
            catalogue=catalogue,
            audit=audit,
            signing_key=signing_key,
            at=clock(),
            master_keys=master_keys,
        )
    except (NotFoundError, ConflictError):
        db.rollback()
        raise ConsoleNotFoundError() from None
    return _download(document, f"export-{request_id[:8]}.json")


async def _audit_export(
    db: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    user: OfficerDep,
    signing_key: SigningKeyDep,
    start: Annotated[int, Query(ge=1)],
    end: Annotated[int, Query(ge=1)],
) -> Response:
    """Download entries ``start..end`` as signed JSON with a checkpoint and Merkle proof."""
    at = clock()
    try:
        export = export_range(
            session=db, first=start, last=end, policy=CheckpointPolicy(key=signing_key, clock=clock)
        )
    except NotFoundError:
        db.rollback()
        raise ConsoleNotFoundError() from None
    audit_action(
        db,
        audit,
        user.principal,
        action=AuditAction.CONSOLE_EXPORT,
        at=at,
        detail={"from": start, "to": end},
    )
    return _download(export, f"audit-{start}-{end}.json")


async def _consent_receipt(
    subject: str,
    receipt: str,
    db: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    user: OfficerDep,
    catalogue: CatalogueDep,
    purposes: PurposesDep,
    signing_key: SigningKeyDep,
    controller: ControllerDep,
) -> Response:
    """Download the signed receipt of one of a subject's consent events (audited as a lookup).

    The receipt is the document the subject downloads for themselves.
    """
    if not _PSEUDONYM.fullmatch(subject) or not re.fullmatch(r"[0-9a-f-]{8,64}", receipt):
        raise ConsoleNotFoundError()
    try:
        document = signed_receipt(
            session=db,
            subject=subject,
            receipt=receipt,
            catalogue=catalogue,
            purposes=purposes,
            signing_key=signing_key,
            controller=controller,
        )
    except NotFoundError:
        raise ConsoleNotFoundError() from None
    audit_action(
        db,
        audit,
        user.principal,
        action=AuditAction.CONSOLE_LOOKUP,
        at=clock(),
        subject=subject,
        detail={"receipt": receipt},
    )
    return _download(document, f"consent-receipt-{receipt[:12]}.json")


async def _identity_review(
    request: Request,
    candidate_id: int,
    action: str,
    db: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    user: OfficerDep,
    settings: SettingsDep,
    csrf: CsrfField,
) -> Response:
    """Accept or reject a probabilistic pair from the review queue."""
    check_csrf(user, csrf)
    if action not in ("accept", "reject"):
        raise ConsoleNotFoundError()
    try:
        review_pair(
            session=db, candidate_id=candidate_id, accept=action == "accept",
            principal=user.principal, audit=audit, hub_limit=settings.identity_hub_limit,
            at=clock(),
        )  # fmt: skip
    except NotFoundError:
        db.rollback()
        raise ConsoleNotFoundError() from None
    except ServerError:
        db.rollback()
        return _refused(request, user, "error.conflict", status_code=409)
    return redirect(f"/identity?done={action}")


async def _identity_detach(
    request: Request,
    db: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    user: OfficerDep,
    settings: SettingsDep,
    csrf: CsrfField,
    subject: Annotated[str, Form(max_length=80)],
    reason: Annotated[str, Form(min_length=3, max_length=500)],
) -> Response:
    """Split a pseudonym off every automatic link (audited; undoable on the same page)."""
    check_csrf(user, csrf)
    if not _PSEUDONYM.fullmatch(subject):
        return _refused(request, user, "error.bad_input", status_code=422)
    try:
        detach_subject(
            session=db, subject=subject, reason=reason.strip(), principal=user.principal,
            audit=audit, hub_limit=settings.identity_hub_limit, at=clock(),
        )  # fmt: skip
    except NotFoundError:
        db.rollback()
        raise ConsoleNotFoundError() from None
    return redirect(f"/identity?subject={subject}&done=detach")


async def _identity_undo(
    request: Request,
    decision_id: int,
    db: SessionDep,
    audit: AuditDep,
    clock: ClockDep,
    user: OfficerDep,
    settings: SettingsDep,
    csrf: CsrfField,
    subject: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """Undo a merge or detach decision."""
    check_csrf(user, csrf)
    try:
        undo_decision(
            session=db, override_id=decision_id, principal=user.principal, audit=audit,
            hub_limit=settings.identity_hub_limit, at=clock(),
        )  # fmt: skip
    except NotFoundError:
        db.rollback()
        raise ConsoleNotFoundError() from None
    except ServerError:
        db.rollback()
        return _refused(request, user, "error.conflict", status_code=409)
    back = f"subject={subject}&" if _PSEUDONYM.fullmatch(subject) else ""
    return redirect(f"/identity?{back}done=undo")


def _refused(request: Request, user: Any, key: str, *, status_code: int) -> HTMLResponse:
    """Render the error page for a refused action, with a way back."""
    context = {
        "message_key": key,
        "title_key": "error.forbidden.title",
        "back": request.headers.get("referer", ""),
    }
    return render(request, "error.html", context, user=user, status_code=status_code)


def build_actions_router() -> APIRouter:
    """Return the router of the console's actions (mounted under ``/console``).

    Returns
    -------
    APIRouter
        Login/logout, notice publishing, request decisions and downloads, audit verify.
    """
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/login", _login, methods=["POST"])
    router.add_api_route("/logout", _logout, methods=["POST"])
    router.add_api_route("/consent/notices", _publish, methods=["POST"])
    router.add_api_route("/audit/verify", _verify, methods=["POST"])
    router.add_api_route("/audit/export", _audit_export, methods=["GET"])
    router.add_api_route("/requests/{request_id}/receipt", _receipt, methods=["GET"])
    router.add_api_route("/consent/{subject}/receipts/{receipt}", _consent_receipt, methods=["GET"])
    router.add_api_route("/requests/{request_id}/export", _export, methods=["GET"])
    router.add_api_route("/requests/{request_id}/{action}", _decide, methods=["POST"])
    router.add_api_route("/identity/detach", _identity_detach, methods=["POST"])
    router.add_api_route("/identity/decisions/{decision_id}/undo", _identity_undo, methods=["POST"])
    router.add_api_route(
        "/identity/reviews/{candidate_id}/{action}", _identity_review, methods=["POST"]
    )
    return router
