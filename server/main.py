"""The application factory ``create_app`` and the logging setup of the server entry point.

Nothing happens at import: the engine is built in the lifespan, settings come from the
argument or the cached :func:`server.config.get_settings`. Logging is configured only by
:func:`configure_logging`, which the ``serve`` command calls.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from .api.deps import check_consent_files, get_clock
from .api.errors import install_error_handlers
from .api.routes.api import build_api_router
from .clock import Clock
from .config import MasterKeySource, ServerSettings, SigningKeySource, get_settings
from .console.app import install_console
from .db import create_db_engine

logger = logging.getLogger(__name__)

#: What the access log must not show, and what replaces it: a ``/subjects/<x>`` path
#: segment (whatever a client put there), a ``subject=`` query value (audit listing,
#: console lookup), and a pseudonym anywhere else in the line (console receipt paths).
_REDACTIONS = (
    (re.compile(r"/subjects/[^/?\s]+"), "/subjects/<subject>"),
    (re.compile(r"([?&]subject=)[^&\s]*"), r"\1<subject>"),
    (re.compile(r"ps_[0-9a-fA-F]{64}"), "<subject>"),
)


def _redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def create_app(
    settings: ServerSettings | None = None,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the FastAPI application.

    Parameters
    ----------
    settings : ServerSettings or None
        Settings to use; ``None`` reads them with :func:`get_settings` when the app starts.
        Given settings replace the ``get_settings`` dependency.
    engine : Engine or None
        An engine to use instead of one built from ``settings.database_url`` (tests pass an
        in-memory engine); the app does not dispose an engine it was given.
    clock : Clock or None
        Source of "now" for consent checks and audit times (tests move time with it).

    Returns
    -------
    FastAPI
        The application; its schema must already be migrated (``upgrade_database``).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings if settings is not None else get_settings()
        check_consent_files(resolved)  # refuse to start on an invalid purpose list/catalogue
        owned = engine is None
        app.state.engine = engine if engine is not None else create_db_engine(resolved.database_url)
        app.state.master_keys = MasterKeySource(resolved)
        app.state.signing = SigningKeySource(resolved)
        logger.info("fedprofile server started (%s)", app.state.engine.dialect.name)
        try:
            yield
        finally:
            if owned:
                app.state.engine.dispose()
            app.state.engine = None

    app = FastAPI(
        title="fedprofile",
        summary="Consent-scoped, pseudonymous profile fields and a tamper-evident audit log",
        version="0.1.0",
        lifespan=lifespan,
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    if clock is not None:
        app.dependency_overrides[get_clock] = lambda: clock
    install_error_handlers(app)
    app.include_router(build_api_router())
    install_console(app)
    return app


class RedactSubjectPathFilter(logging.Filter):
    """Replace subjects in access-log records with ``<subject>``.

    A misbehaving client may put a raw identifier where a pseudonym belongs; the request is
    refused (422) but the access log would still print the path. Pseudonyms are personal
    data too: the ``subject=`` query value (audit listing, console lookup) and any pseudonym
    in a path (console receipt downloads) are replaced as well.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact string arguments and the message; always keep the record."""
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _redact(record.msg)
        return True


def configure_logging(level: str = "INFO") -> None:
    """Configure root logging for the server process (entry points only).

    Also installs :class:`RedactSubjectPathFilter` on uvicorn's access logger.

    Parameters
    ----------
    level : str
        Root log level name.
    """
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=False
    )
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSubjectPathFilter) for f in access.filters):
        access.addFilter(RedactSubjectPathFilter())
