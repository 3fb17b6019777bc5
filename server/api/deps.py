"""FastAPI dependencies: settings, engine and session, clock, catalogue, audit sink, principal.

Routes declare what they need with the ``Annotated`` aliases below (``SessionDep``,
``EdgePrincipal``...). Tests replace any of them with ``app.dependency_overrides``; passing
settings or a clock to ``create_app`` installs the same overrides.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Protocol, cast

import anyio
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from consent import (
    FieldCatalogue,
    PIIController,
    PurposeRegistry,
    check_consent_data,
    load_default_catalogue,
    load_default_purposes,
)
from privacy import MasterKeyRing, SigningKey

from ..audit.checkpoint import CheckpointPolicy
from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink, DatabaseAuditSink
from ..clock import Clock, system_clock
from ..config import ServerSettings, get_settings
from ..crud.token import resolve_principal
from ..errors import (
    DatabaseError,
    ForbiddenError,
    TooManyFailedLoginsError,
    UnauthenticatedError,
)
from ..principal import Principal
from ..tables.token import Role
from .admission import DatabaseGate
from .auth_throttle import FailedAuthThrottle

logger = logging.getLogger(__name__)


async def app_settings(request: Request) -> ServerSettings:
    """Return the settings the app runs on (given to ``create_app``, else the environment's).

    A coroutine on purpose, as are the other dependencies below that do no I/O: FastAPI runs
    a plain ``def`` dependency in the thread pool, one hop per dependency per request.
    """
    settings: ServerSettings | None = getattr(request.app.state, "settings", None)
    if settings is None:
        settings = get_settings()
        request.app.state.settings = settings
    return settings


SettingsDep = Annotated[ServerSettings, Depends(app_settings)]


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


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Yield one session per request, once the worker's database gate admits it.

    The slot is awaited on the event loop and held until the session is closed, so an
    admitted request never waits on the connection pool (``server.api.admission``). The
    session is closed in a thread outside the request limit: closing returns its connection
    to the pool, which may wait on the network.

    Raises
    ------
    DatabaseError
        If the app was not started (lifespan not run).
    ServerBusyError
        If no slot freed within the configured wait, or the wait queue is full.
    """
    engine = get_engine(request)
    gate: DatabaseGate | None = getattr(request.app.state, "db_gate", None)
    if gate is None:
        raise DatabaseError("the application has no database gate; was its lifespan run?")
    async with gate.slot():
        session = Session(engine, expire_on_commit=False)
        try:
            yield session
        finally:
            await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))


SessionDep = Annotated[Session, Depends(get_session)]


async def get_master_keys(request: Request) -> MasterKeyRing:
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


async def get_signing_key(request: Request) -> SigningKey:
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


async def get_controller(settings: SettingsDep) -> PIIController:
    """Return the controller named on signed consent receipts (from the settings)."""
    return settings.receipt_controller()


ControllerDep = Annotated[PIIController, Depends(get_controller)]


async def get_clock(request: Request) -> Clock:
    """Return the clock routes read "now" from (UTC system time unless ``create_app`` got one)."""
    clock: Clock = getattr(request.app.state, "clock", system_clock)
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]


@functools.lru_cache(maxsize=4)
def _load_catalogue(path: Path | None) -> FieldCatalogue:
    """Load and cache a catalogue (the shipped one for ``None``)."""
    return load_default_catalogue() if path is None else FieldCatalogue.load(path)


async def get_catalogue(settings: SettingsDep) -> FieldCatalogue:
    """Return the field catalogue in force.

    Raises
    ------
    consent.CatalogueError
        If the configured catalogue file is invalid.
    """
    return _load_catalogue(settings.catalogue_path)


CatalogueDep = Annotated[FieldCatalogue, Depends(get_catalogue)]


async def get_purposes(catalogue: CatalogueDep) -> PurposeRegistry:
    """Return the purpose list in force, checked against the catalogue.

    Raises
    ------
    consent.PurposeListError
        If the purpose list is invalid or the catalogue names an unregistered purpose.
    """
    return _checked_purposes(catalogue)


#: Purpose lists already checked, by catalogue object (kept alive beside its id).
_CHECKED: dict[int, tuple[FieldCatalogue, PurposeRegistry]] = {}


def _checked_purposes(catalogue: FieldCatalogue) -> PurposeRegistry:
    """Load the purpose list and check it against ``catalogue`` once per catalogue object.

    Keyed by identity: hashing the frozen catalogue on every request would cost more than
    the check it saves. Catalogues come from ``_load_catalogue``'s small cache.
    """
    known = _CHECKED.get(id(catalogue))
    if known is not None and known[0] is catalogue:
        return known[1]
    purposes = load_default_purposes()
    check_consent_data(catalogue, purposes)
    if len(_CHECKED) > 8:
        _CHECKED.clear()
    _CHECKED[id(catalogue)] = (catalogue, purposes)
    return purposes


PurposesDep = Annotated[PurposeRegistry, Depends(get_purposes)]


def check_consent_files(settings: ServerSettings) -> None:
    """Validate the purpose list and the field catalogue together (called at startup).

    Parameters
    ----------
    settings : ServerSettings
        Settings naming the catalogue file (``None``: the shipped one).

    Raises
    ------
    consent.CatalogueError
        If the catalogue is invalid (every problem listed).
    consent.PurposeListError
        If the purpose list is invalid or disagrees with the catalogue or the enum.
    """
    check_consent_data(_load_catalogue(settings.catalogue_path), load_default_purposes())


async def get_audit_sink(
    session: SessionDep, request: Request, settings: SettingsDep, clock: ClockDep
) -> AuditSink:
    """Return the audit sink bound to the request's session (same transaction).

    The sink signs the audit checkpoints that fall due (every
    ``settings.audit_checkpoint_every`` entries) with the server's signing key.
    """
    source = getattr(request.app.state, "signing", None)
    if source is None:
        return DatabaseAuditSink(session)
    policy = CheckpointPolicy(key=source.key, every=settings.audit_checkpoint_every, clock=clock)
    return DatabaseAuditSink(session, checkpoints=policy)


AuditDep = Annotated[AuditSink, Depends(get_audit_sink)]

_bearer = HTTPBearer(
    auto_error=False, description="Bearer token of an edge, a staff member or a subject"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _client_address(request: Request) -> str:
    """Return the caller's address as this server sees it (the proxy's, behind one)."""
    return request.client.host if request.client is not None else "unknown"


def _throttle(request: Request) -> FailedAuthThrottle:
    """Return the failed-authentication throttle the lifespan built from the settings."""
    throttle: FailedAuthThrottle | None = getattr(request.app.state, "auth_throttle", None)
    if throttle is None:
        raise DatabaseError("the application has no authentication throttle; was its lifespan run?")
    return throttle


def authenticate(
    *,
    request: Request,
    session: Session,
    settings: ServerSettings,
    token: str,
    at: datetime,
    audit: AuditSink,
) -> Principal:
    """Resolve a presented token, counting failures per client (API and console sign-in).

    A client locked out by :class:`FailedAuthThrottle` is refused before its token is
    looked up; the failure that starts a lockout is audited (``auth.throttle``) and
    committed on its own.

    Raises
    ------
    TooManyFailedLoginsError
        If the client is locked out (429 with ``Retry-After``).
    UnauthenticatedError
        If the token is not valid.
    """
    throttle = _throttle(request)
    client = _client_address(request)
    now = time.monotonic()
    wait = throttle.retry_after(client, now)
    if wait:
        raise TooManyFailedLoginsError(retry_after=wait)
    try:
        return resolve_principal(
            session=session, token=token, static_tokens=static_tokens(settings), at=at
        )
    except UnauthenticatedError:
        if throttle.fail(client, now):
            session.rollback()
            audit.record(
                actor=f"client:{throttle.client_ref(client)}",
                role="unauthenticated",
                action=AuditAction.AUTH_THROTTLE,
                purpose=None,
                subject=None,
                outcome=AuditOutcome.REFUSED,
                detail={
                    "failures": throttle.limit,
                    "window_s": throttle.window_s,
                    "lockout_s": throttle.lockout_s,
                },
                at=at,
            )
            session.commit()
            logger.warning("a client was locked out after %d failed tokens", throttle.limit)
        raise


def get_optional_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: BearerDep,
    clock: ClockDep,
    audit: AuditDep,
) -> Principal | None:
    """Resolve the bearer token if one was sent; ``None`` when there is none.

    Raises
    ------
    UnauthenticatedError
        If a token was sent but is not valid.
    TooManyFailedLoginsError
        If this client sent too many wrong tokens recently.
    """
    if credentials is None:
        return None
    return authenticate(
        request=request,
        session=session,
        settings=settings,
        token=credentials.credentials,
        at=clock(),
        audit=audit,
    )


def static_tokens(settings: ServerSettings) -> dict[Role, SecretStr | None]:
    """Return the static role secrets of ``settings`` (for :func:`resolve_principal`).

    Parameters
    ----------
    settings : ServerSettings
        The server settings.

    Returns
    -------
    dict[Role, SecretStr or None]
        The admin and agent secrets (``None`` when unset).
    """
    return {Role.ADMIN: settings.admin_token, Role.AGENT: settings.agent_token}


OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]


async def get_principal(principal: OptionalPrincipal) -> Principal:
    """Return the caller.

    Raises
    ------
    UnauthenticatedError
        If no valid bearer token was sent.
    """
    if principal is None:
        raise UnauthenticatedError()
    return principal


class RoleGuard(Protocol):
    """A dependency admitting only some roles; ``allowed_roles`` says which."""

    allowed_roles: frozenset[Role]

    async def __call__(self, principal: Principal) -> Principal:
        """Return the principal if its role is allowed; raise ``ForbiddenError`` if not."""
        ...


def require_role(*roles: Role) -> RoleGuard:
    """Build a dependency that admits only callers holding one of ``roles``.

    The returned dependency carries ``allowed_roles`` so tooling (the authorization-matrix
    test, the roles table in ``docs/consent.md``) can read what each route declares.

    Parameters
    ----------
    *roles : Role
        The roles the route accepts.

    Returns
    -------
    RoleGuard
        A dependency returning the admitted principal.

    Raises
    ------
    ValueError
        If no role is given.
    """
    if not roles:
        raise ValueError("require_role needs at least one role")
    allowed = frozenset(roles)
    ordered = [r.value for r in Role if r in allowed]

    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in allowed:
            raise ForbiddenError(role=principal.role.value, allowed=ordered)
        return principal

    guard = cast(RoleGuard, dependency)
    guard.allowed_roles = allowed
    return guard


def declared_roles(dependant: Dependant) -> frozenset[Role] | None:
    """Return the roles a route's dependency tree admits (``None``: no role guard).

    When a route holds several guards, a caller must pass each of them, so the admitted
    roles are their intersection.

    Parameters
    ----------
    dependant : fastapi.dependencies.models.Dependant
        A route's ``dependant``.

    Returns
    -------
    frozenset[Role] or None
        The admitted roles, or ``None`` when no dependency declares any.
    """
    found: frozenset[Role] | None = None
    pending = [dependant]
    while pending:
        node = pending.pop()
        roles = getattr(node.call, "allowed_roles", None)
        if isinstance(roles, frozenset):
            found = roles if found is None else found & roles
        pending.extend(node.dependencies)
    return found


EdgePrincipal = Annotated[Principal, Depends(require_role(Role.EDGE))]
#: Route-level guards for routes that do not use the principal itself.
readers_only = Depends(require_role(Role.AGENT, Role.ANALYST, Role.ADMIN))
admins_only = Depends(require_role(Role.ADMIN))
officers_only = Depends(require_role(Role.COMPLIANCE_OFFICER, Role.ADMIN))
ReaderPrincipal = Annotated[Principal, Depends(require_role(Role.AGENT, Role.ADMIN))]
AdminPrincipal = Annotated[Principal, Depends(require_role(Role.ADMIN))]
OfficerPrincipal = Annotated[Principal, Depends(require_role(Role.COMPLIANCE_OFFICER, Role.ADMIN))]
SubjectPrincipal = Annotated[Principal, Depends(require_role(Role.SUBJECT))]
