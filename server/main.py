"""The application factory ``create_app`` and the logging setup of the server entry point.

Nothing happens at import: the engine is built in the lifespan, settings come from the
argument or the cached :func:`server.config.get_settings`. Logging is configured only by
:func:`configure_logging`, which the ``serve`` command calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from .api.admission import DatabaseGate, size_thread_pool
from .api.auth_throttle import FailedAuthThrottle
from .api.body_limit import BodyLimitMiddleware
from .api.deps import check_consent_files
from .api.errors import error_code_table, install_error_handlers
from .api.routes.api import build_api_router
from .api.security_headers import SecurityHeadersMiddleware
from .audit.checkpoint import CheckpointPolicy
from .clock import Clock, system_clock
from .config import MasterKeySource, ServerSettings, SigningKeySource, get_settings
from .console.app import install_console
from .console.web import PREFIX as CONSOLE_PREFIX
from .db import create_db_engine
from .decisions.audit_flush import AuditFlusher
from .decisions.source import setup_from_settings
from .log_redaction import redact

logger = logging.getLogger(__name__)


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
        Routes read them from ``app.state.settings`` (``server.api.deps.app_settings``).
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
        app.state.settings = resolved
        check_consent_files(resolved)  # refuse to start on an invalid purpose list/catalogue
        owned = engine is None
        app.state.engine = (
            engine
            if engine is not None
            else create_db_engine(
                resolved.database_url,
                pool_size=resolved.db_pool_size,
                max_overflow=resolved.db_max_overflow,
                pool_timeout=resolved.db_pool_timeout,
            )
        )
        slots = resolved.db_pool_size + resolved.db_max_overflow
        app.state.db_gate = DatabaseGate(
            slots, wait_s=resolved.db_queue_wait, queue_limit=resolved.db_queue_limit
        )
        size_thread_pool(slots)
        app.state.auth_throttle = FailedAuthThrottle(
            limit=resolved.auth_failure_limit,
            window_s=resolved.auth_failure_window,
            lockout_s=resolved.auth_lockout,
        )
        app.state.master_keys = MasterKeySource(resolved)
        app.state.signing = SigningKeySource(resolved)
        app.state.decisions = setup_from_settings(resolved)  # refuses a policy that fails
        flusher = AuditFlusher(
            app.state.engine,
            checkpoints=lambda: CheckpointPolicy(
                key=app.state.signing.key,
                every=resolved.audit_checkpoint_every,
                clock=app.state.clock,
            ),
            interval=resolved.decision_audit_interval,
        )
        app.state.decision_audit = flusher
        flushing = asyncio.create_task(flusher.run())
        logger.info("fedprofile server started (%s)", app.state.engine.dialect.name)
        try:
            yield
        finally:
            flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flushing
            try:
                await anyio.to_thread.run_sync(flusher.flush)
            except Exception:  # noqa: BLE001 - shutting down: report, do not mask the exit
                logger.exception("auditing the last decisions failed; they stay pending")
            if owned:
                app.state.engine.dispose()
            app.state.engine = None

    app = FastAPI(
        title="fedprofile",
        summary="Consent-scoped, pseudonymous profile fields and a tamper-evident audit log",
        description=(
            "Every error answer is an `ErrorBody`: a stable `error` code and a one-line "
            "`message` that never repeats submitted values.\n\n" + error_code_table()
        ),
        version="0.1.0",
        lifespan=lifespan,
    )
    # State, not dependency_overrides: FastAPI re-analyses an override on every request.
    app.state.settings = settings
    app.state.clock = clock if clock is not None else system_clock
    install_error_handlers(app)
    app.include_router(build_api_router())
    install_console(app)

    def body_limits() -> tuple[int, int]:
        current: ServerSettings | None = app.state.settings
        if current is None:  # before the lifespan resolved them: the defaults
            fields = ServerSettings.model_fields
            return fields["max_body_bytes"].default, fields["max_anonymous_body_bytes"].default
        return current.max_body_bytes, current.max_anonymous_body_bytes

    # Added innermost first: security headers wrap everything, the 413s included.
    app.add_middleware(BodyLimitMiddleware, limits=body_limits)
    app.add_middleware(SecurityHeadersMiddleware, console_prefix=CONSOLE_PREFIX)
    return app


def create_served_app() -> FastAPI:
    """Build the app inside one ``fedprofile serve`` worker process (uvicorn's factory).

    uvicorn starts each worker from this import string, so the worker's own settings come
    from the environment (:func:`get_settings`) and its access log is redacted here, at the
    level uvicorn configured for the process.

    Returns
    -------
    FastAPI
        The application on the settings of ``FEDPROFILE_*``.
    """
    level = logging.getLogger("uvicorn.error").getEffectiveLevel()
    configure_logging(logging.getLevelName(level))
    return create_app(get_settings())


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
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
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
