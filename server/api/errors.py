"""Exception handlers: each domain error class maps to one status and a stable code.

Every error body is ``{"error": <code>, "message": <one line>, ...}``. Bodies never echo
request values: validation errors list locations and rules only, database errors say only
that the database failed.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from consent import CatalogueError, ConsentError, PurposeNotRegisteredError
from models import RefusedField
from privacy import PrivacyError

from ..errors import (
    AuthError,
    ConflictError,
    ConsentRefusedError,
    DatabaseError,
    EdgeNameTakenError,
    EnrollmentDisabledError,
    FieldValueRefusedError,
    ForbiddenError,
    IdempotencyConflictError,
    IdentityDecisionError,
    InvalidCursorError,
    NotFoundError,
    RequestInvalidError,
    RequestStateError,
    ServerBusyError,
    ServerError,
    SettingsError,
    TooManyFailedLoginsError,
    UnauthenticatedError,
)
from ..log_redaction import redact

logger = logging.getLogger(__name__)

#: HTTP status of each server error class (most specific class first wins via the MRO).
STATUS: dict[type[ServerError], int] = {
    ServerError: 500,
    SettingsError: 500,
    DatabaseError: 503,
    ServerBusyError: 503,
    TooManyFailedLoginsError: 429,
    AuthError: 401,
    UnauthenticatedError: 401,
    ForbiddenError: 403,
    EnrollmentDisabledError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    EdgeNameTakenError: 409,
    IdempotencyConflictError: 409,
    ConsentRefusedError: 403,
    FieldValueRefusedError: 422,
    RequestStateError: 409,
    RequestInvalidError: 422,
    IdentityDecisionError: 422,
    InvalidCursorError: 422,
}

#: Help text of every error code an API response can carry.
ERROR_HELP: dict[str, str] = {
    "server_error": "an unexpected server-side failure; see the server log",
    "invalid_settings": "the server's FEDPROFILE_* settings are invalid",
    "database_unavailable": "the database is unreachable or not migrated",
    "database_error": "a database operation failed; retry later",
    "server_busy": (
        "every database slot of the worker is taken and the request waited its limit; "
        "retry after the Retry-After seconds"
    ),
    "unauthorized": "missing, unknown or revoked bearer token",
    "forbidden": "the caller's role may not use this route",
    "enrollment_disabled": "registration by enrollment token is off on this server",
    "not_found": "no such edge, subject, run or route",
    "conflict": "the write collides with stored state",
    "edge_name_taken": "an edge with this name is already registered",
    "idempotency_conflict": "the Idempotency-Key was used before with another body",
    "consent_refused": "fields were refused by the catalogue or consent; none stored",
    "invalid_field_value": (
        "a field's value is not its catalogued type or range, its explanation is not "
        "catalogued, a text has the shape of an identifier, or computed_at is in the future; "
        "'refused' names each field and reason; none stored"
    ),
    "purpose_not_registered": "the purpose is not in the purpose list ('known' lists them)",
    "consent_error": "the request violates the field catalogue",
    "catalogue_invalid": "the server's field catalogue is invalid",
    "privacy_error": "a privacy-room precondition failed",
    "invalid_request": "the request failed validation ('problems' lists locations and rules)",
    "http_error": "a plain HTTP error (unknown route, wrong method)",
    "invalid_body": "the request body is not well-formed JSON (or form data) in UTF-8",
    "body_too_large": (
        "the request body is larger than the server's limit for this caller "
        "(FEDPROFILE_MAX_BODY_BYTES; FEDPROFILE_MAX_ANONYMOUS_BODY_BYTES without credentials)"
    ),
    "dsr_state": (
        "the data-subject request's state does not admit this action ('reason' says which rule)"
    ),
    "dsr_invalid": "the data-subject request is malformed or cannot be carried out",
    "identity_decision_invalid": (
        "the identity decision cannot apply (a pseudonym merged with itself, an undone decision)"
    ),
    "invalid_cursor": "the feed cursor was not issued by this server; start again without one",
    "too_many_failed_logins": (
        "too many wrong tokens from this client in a short time; wait Retry-After seconds"
    ),
}


class ErrorBody(BaseModel):
    """The body of every error answer: a stable code, one line, and code-specific extras.

    Extras: ``problems`` (422 ``invalid_request``: location and rule of each), ``refused``
    (403 ``consent_refused``), ``known`` (422 ``purpose_not_registered``), ``reason``
    (409 ``dsr_state``), ``limit_bytes`` (413 ``body_too_large``). No extra repeats a
    submitted value.
    """

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="stable machine-readable code (see the error-code table)")
    message: str = Field(description="one line a person can act on; never echoes input")


#: What each documented status means on this API (OpenAPI ``responses`` of every route).
_STATUS_HELP: dict[int, str] = {
    400: "invalid_body: the body could not be read as JSON (or form data)",
    401: "unauthorized: missing, unknown or revoked bearer token",
    403: "forbidden, enrollment_disabled or consent_refused",
    404: "not_found",
    409: "conflict, edge_name_taken, idempotency_conflict or dsr_state",
    413: "body_too_large",
    422: "invalid_request, purpose_not_registered, consent_error, dsr_invalid, ...",
    429: "too_many_failed_logins (with Retry-After)",
    503: "database_unavailable, database_error or server_busy (with Retry-After)",
}


def error_responses() -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI ``responses`` every API route documents (all share ``ErrorBody``).

    Returns
    -------
    dict
        Status code to ``{"model": ErrorBody, "description": ...}``.
    """
    return {
        status: {"model": ErrorBody, "description": help_text}
        for status, help_text in _STATUS_HELP.items()
    }


def error_code_table() -> str:
    """Return the error-code table (Markdown) for the OpenAPI description and the docs.

    Returns
    -------
    str
        One row per code: code and meaning.
    """
    rows = "\n".join(f"| `{code}` | {text} |" for code, text in sorted(ERROR_HELP.items()))
    return "| code | meaning |\n|---|---|\n" + rows


def _body(code: str, message: str, **extra: object) -> dict[str, object]:
    """Build the common error body."""
    return {"error": code, "message": message, **extra}


def _status_of(exc: ServerError) -> int:
    """Return the status of the most specific class of ``exc`` in ``STATUS``."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def describe_error(exc: ServerError | ConsentError) -> tuple[int, dict[str, object]]:
    """Return the status and body the API answers ``exc`` with.

    Batch routes use it to give each failed item the answer its single route would give.

    Parameters
    ----------
    exc : ServerError or ConsentError
        A server-room or consent-room error.

    Returns
    -------
    tuple[int, dict[str, object]]
        HTTP status and the common error body (``error``, ``message`` and extras such as
        ``refused`` or ``known``).
    """
    if isinstance(exc, ConsentError):
        if isinstance(exc, PurposeNotRegisteredError):
            return 422, _body("purpose_not_registered", str(exc), known=exc.known)
        if isinstance(exc, CatalogueError):
            logger.error("field catalogue is invalid (%d problem(s))", len(exc.problems))
            return 500, _body("catalogue_invalid", "the field catalogue is invalid")
        return 422, _body("consent_error", str(exc))
    extra: dict[str, object] = {}
    if isinstance(exc, RequestStateError):
        extra["reason"] = exc.reason
    if isinstance(exc, ConsentRefusedError):
        extra["refused"] = [
            RefusedField(field=r.field, reason=r.reason, message=r.message).model_dump()
            for r in exc.refused
        ]
    return _status_of(exc), _body(exc.code, str(exc), **extra)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    """Map a ``ServerError`` to its status and code."""
    assert isinstance(exc, ServerError)
    status, body = describe_error(exc)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthenticatedError) else None
    if isinstance(exc, ServerBusyError | TooManyFailedLoginsError):
        headers = {"Retry-After": str(exc.retry_after)}
        logger.warning("%s on %s %s", exc.code, request.method, redact(request.url.path))
        return JSONResponse(body, status_code=status, headers=headers)
    if status >= 500:
        logger.error("%s on %s %s", type(exc).__name__, request.method, redact(request.url.path))
    return JSONResponse(body, status_code=status, headers=headers)


async def _consent_error(_request: Request, exc: Exception) -> JSONResponse:
    """Map consent-room errors: unknown purpose and uncatalogued field are 422."""
    assert isinstance(exc, ConsentError)
    status, body = describe_error(exc)
    return JSONResponse(body, status_code=status)


async def _privacy_error(_request: Request, exc: Exception) -> JSONResponse:
    """Map privacy-room errors to 400 with their (PII-free) message."""
    return JSONResponse(_body("privacy_error", str(exc)), status_code=400)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """Return 422 listing each problem's location and rule, never the input value."""
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "type": err.get("type"),
            "msg": err.get("msg"),
        }
        for err in exc.errors()
    ]
    return JSONResponse(
        _body("invalid_request", f"{len(problems)} validation problem(s)", problems=problems),
        status_code=422,
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """Return 503 without the statement or its parameters (they may hold values)."""
    logger.error(
        "database error %s on %s %s", type(exc).__name__, request.method, redact(request.url.path)
    )
    return JSONResponse(_body("database_error", "a database operation failed"), status_code=503)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    """Give plain HTTP errors (404 route, 405 method) the common body."""
    assert isinstance(exc, StarletteHTTPException)
    code = {400: "invalid_body", 404: "not_found", 413: "body_too_large"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        _body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register one handler per domain base class on ``app``.

    Parameters
    ----------
    app : FastAPI
        The application.
    """
    app.add_exception_handler(ServerError, _server_error)
    app.add_exception_handler(ConsentError, _consent_error)
    app.add_exception_handler(PrivacyError, _privacy_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
