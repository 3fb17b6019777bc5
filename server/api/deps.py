"""FastAPI dependencies: settings, engine and session, clock, catalogue, audit sink, principal.

Routes declare what they need with the ``Annotated`` aliases below (``SessionDep``,
``EdgePrincipal``...). Tests replace any of them with ``app.dependency_overrides``; passing
settings or a clock to ``create_app`` installs the same overrides.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from consent import FieldCatalogue, load_default_catalogue
from privacy import MasterKeyRing, SigningKey

from ..audit.sink import AuditSink, DatabaseAuditSink
from ..clock import Clock, system_clock
from ..config import ServerSettings, get_settings
from ..crud.token import resolve_principal
from ..db import iter_session
from ..errors import DatabaseError, ForbiddenError, UnauthenticatedError
from ..principal import Principal
from ..tables.token import Role

SettingsDep = Annotated[ServerSettings, Depends(get_settings)]


def get_engine(request: Request) -> Engine:
    """Return the engine the app's lifespan built.

    Raises
    ------
    DatabaseError
        If the app was not started (lifespan not run).
    """
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise DatabaseError("the application has no database engine; was its lifespan run?")
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """Yield one session per request."""
    yield from iter_session(engine)


SessionDep = Annotated[Session, Depends(get_session)]


def get_master_keys(request: Request) -> MasterKeyRing:
    """Return the master key ring (re-read when the key file changes).

    Raises
    ------
    DatabaseError
        If the app was not started (lifespan not run).
    KeyFileError
        If the master key file became unusable.
    """
    source = getattr(request.app.state, "master_keys", None)
    if source is None:
        raise DatabaseError("the application has no master key source; was its lifespan run?")
    ring: MasterKeyRing = source.current()
    return ring


MasterKeysDep = Annotated[MasterKeyRing, Depends(get_master_keys)]


def get_signing_key(request: Request) -> SigningKey:
    """Return the server's evidence-signing key (receipts, audit checkpoints).

    Raises
    ------
    DatabaseError
        If the app was not started (lifespan not run).
    """
    source = getattr(request.app.state, "signing", None)
    if source is None:
        raise DatabaseError("the application has no signing key; was its lifespan run?")
    key: SigningKey = source.key
    return key


SigningKeyDep = Annotated[SigningKey, Depends(get_signing_key)]


def get_clock() -> Clock:
    """Return the clock routes read "now" from (UTC system time unless overridden)."""
    return system_clock


ClockDep = Annotated[Clock, Depends(get_clock)]


@functools.lru_cache(maxsize=4)
def _load_catalogue(path: Path | None) -> FieldCatalogue:
    """Load and cache a catalogue (the shipped one for ``None``)."""
    return load_default_catalogue() if path is None else FieldCatalogue.load(path)


def get_catalogue(settings: SettingsDep) -> FieldCatalogue:
    """Return the field catalogue in force.

    Raises
    ------
    consent.CatalogueError
        If the configured catalogue file is invalid.
    """
    return _load_catalogue(settings.catalogue_path)


CatalogueDep = Annotated[FieldCatalogue, Depends(get_catalogue)]


def get_audit_sink(session: SessionDep) -> AuditSink:
    """Return the audit sink bound to the request's session (same transaction)."""
    return DatabaseAuditSink(session)


AuditDep = Annotated[AuditSink, Depends(get_audit_sink)]

_bearer = HTTPBearer(auto_error=False, description="Bearer token of an edge, agent or admin")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_optional_principal(
    session: SessionDep, settings: SettingsDep, credentials: BearerDep
) -> Principal | None:
    """Resolve the bearer token if one was sent; ``None`` when there is none.

    Raises
    ------
    UnauthenticatedError
        If a token was sent but is not valid.
    """
    if credentials is None:
        return None
    return resolve_principal(
        session=session,
        token=credentials.credentials,
        static_tokens={Role.ADMIN: settings.admin_token, Role.AGENT: settings.agent_token},
    )


OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]


def get_principal(principal: OptionalPrincipal) -> Principal:
    """Return the caller.

    Raises
    ------
    UnauthenticatedError
        If no valid bearer token was sent.
    """
    if principal is None:
        raise UnauthenticatedError()
    return principal


def require_role(*roles: Role) -> Callable[[Principal], Principal]:
    """Build a dependency that admits only callers holding one of ``roles``.

    Parameters
    ----------
    *roles : Role
        The roles the route accepts.

    Returns
    -------
    Callable[[Principal], Principal]
        A dependency returning the admitted principal.

    Raises
    ------
    ValueError
        If no role is given.
    """
    if not roles:
        raise ValueError("require_role needs at least one role")

    def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise ForbiddenError(role=principal.role.value, allowed=[r.value for r in roles])
        return principal

    return dependency


EdgePrincipal = Annotated[Principal, Depends(require_role(Role.EDGE))]
#: Route-level guards for routes that do not use the principal itself.
readers_only = Depends(require_role(Role.AGENT, Role.ADMIN))
admins_only = Depends(require_role(Role.ADMIN))
ReaderPrincipal = Annotated[Principal, Depends(require_role(Role.AGENT, Role.ADMIN))]
AdminPrincipal = Annotated[Principal, Depends(require_role(Role.ADMIN))]
