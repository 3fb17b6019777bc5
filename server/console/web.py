"""Console plumbing: template rendering, language choice, the login guard and its errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from ..api.deps import ClockDep, SessionDep
from .i18n import LANG_COOKIE, LANGUAGES, choose_lang, parse_lang, translator
from .session import SESSION_COOKIE, ConsoleSession, SessionError, csrf_ok, decode_session

#: Folder of the console's templates and static files.
HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
#: Where the console lives.
PREFIX = "/console"


class LoginRequiredError(Exception):
    """No valid session: the handler redirects to the login page."""


class ConsoleForbiddenError(Exception):
    """The session may not do this; the handler renders a 403 page with ``message_key``.

    Parameters
    ----------
    message_key : str
        The catalogue key of the explanation.
    """

    def __init__(self, message_key: str) -> None:
        super().__init__(message_key)
        self.message_key = message_key


class ConsoleNotFoundError(Exception):
    """A request, entry or document the page names does not exist (404 page)."""


def page_lang(request: Request) -> str:
    """Return the language of this request (query, cookie, ``Accept-Language``, English)."""
    return choose_lang(
        query=request.query_params.get("lang"),
        cookie=request.cookies.get(LANG_COOKIE),
        accept_language=request.headers.get("accept-language"),
    )


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    user: ConsoleSession | None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a console template in the request's language.

    Parameters
    ----------
    request : Request
        The request.
    name : str
        Template file name.
    context : Mapping[str, Any]
        Page values.
    user : ConsoleSession or None
        The logged-in user (for the header and the CSRF field).
    status_code : int
        HTTP status.

    Returns
    -------
    HTMLResponse
        The page; when ``?lang=`` chose the language, the choice is also stored in a cookie.
    """
    lang = page_lang(request)
    values = {
        "t": translator("zh" if lang == "zh" else "en"),
        "lang": lang,
        "languages": LANGUAGES,
        "user": user,
        "csrf": user.csrf if user is not None else "",
        "prefix": PREFIX,
        **context,
    }
    response = TEMPLATES.TemplateResponse(request, name, values, status_code=status_code)
    chosen = parse_lang(request.query_params.get("lang"))
    if chosen is not None:
        response.set_cookie(
            LANG_COOKIE, chosen, max_age=365 * 86400, samesite="strict", path=PREFIX
        )
    response.headers["Cache-Control"] = "no-store"
    return response


def current_user(request: Request, db: SessionDep, clock: ClockDep) -> ConsoleSession:
    """Return the logged-in console user (a dependency of every page).

    Raises
    ------
    LoginRequiredError
        If there is no valid session cookie.
    ConsoleForbiddenError
        If the session's role may not use the compliance pages.
    """
    try:
        session = decode_session(
            request.cookies.get(SESSION_COOKIE),
            secret=request.app.state.console_secret,
            at=clock(),
            db=db,
        )
    except SessionError:
        raise LoginRequiredError() from None
    if not session.may_use_console:
        raise ConsoleForbiddenError("error.forbidden")
    return session


OfficerDep = Annotated[ConsoleSession, Depends(current_user)]


def check_csrf(user: ConsoleSession, submitted: str | None) -> None:
    """Refuse a POST whose CSRF field does not match the session's.

    Raises
    ------
    ConsoleForbiddenError
        With ``error.csrf`` when it does not match.
    """
    if not csrf_ok(user, submitted):
        raise ConsoleForbiddenError("error.csrf")


def redirect(path: str) -> RedirectResponse:
    """Return a 303 redirect to a console path (after a POST)."""
    return RedirectResponse(f"{PREFIX}{path}", status_code=303)
