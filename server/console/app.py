"""Mounting the console on the application: secret, static files, pages and error pages.

:func:`install_console` is what :func:`server.main.create_app` calls. It creates the
per-process cookie-signing secret (sessions end when the process restarts, which suits their
30-minute life), the audit-verify status holder, the static files, the page routers and the
handlers that turn "not logged in" into a redirect to the login page and "not allowed" into a
translated 403 page.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from .actions import build_actions_router
from .coverage_cache import CoverageCache
from .decision_pages import build_decision_pages_router
from .pages import build_pages_router
from .verify_state import VerifyState
from .web import (
    HERE,
    PREFIX,
    ConsoleForbiddenError,
    ConsoleNotFoundError,
    LoginRequiredError,
    render,
)


def _install_handlers(app: FastAPI) -> None:
    """Register the console's error pages."""

    async def login_required(_request: Request, _exc: Exception) -> Response:
        return RedirectResponse(f"{PREFIX}/login", status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        key = exc.message_key if isinstance(exc, ConsoleForbiddenError) else "error.forbidden"
        context = {"message_key": key, "title_key": "error.forbidden.title"}
        return render(request, "error.html", context, user=None, status_code=403)

    async def not_found(request: Request, _exc: Exception) -> Response:
        context = {"message_key": "error.not_found", "title_key": "error.not_found"}
        return render(request, "error.html", context, user=None, status_code=404)

    app.add_exception_handler(LoginRequiredError, login_required)
    app.add_exception_handler(ConsoleForbiddenError, forbidden)
    app.add_exception_handler(ConsoleNotFoundError, not_found)


def install_console(app: FastAPI) -> None:
    """Mount the console (pages, actions, static files, error pages) on ``app``.

    Parameters
    ----------
    app : FastAPI
        The application from :func:`server.main.create_app`; its state gains
        ``console_secret``, ``console_verify`` and ``console_coverage``.
    """
    app.state.console_secret = secrets.token_bytes(32)
    app.state.console_verify = VerifyState()
    app.state.console_coverage = CoverageCache()
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="console")
    app.include_router(build_pages_router(), prefix=PREFIX)
    app.include_router(build_decision_pages_router(), prefix=PREFIX)
    app.include_router(build_actions_router(), prefix=PREFIX)
    _install_handlers(app)
