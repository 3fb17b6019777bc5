"""Server settings: one ``ServerSettings`` object per process, built once by ``get_settings``.

Values come from ``FEDPROFILE_*`` environment variables. Nothing is read at import time: the
entry point (``fedprofile serve``) calls :func:`get_settings`, and tests build their own
``ServerSettings`` and pass it to ``create_app``. The master key ring named by
``master_key_path`` is opened through a :class:`MasterKeySource` built once per process.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from consent import PIIController
from privacy import (
    KeyFileError,
    MasterKeyRing,
    SigningKey,
    create_master_key_file,
    load_master_key_file,
    load_or_create_signing_key_file,
)

from .errors import SettingsError

logger = logging.getLogger(__name__)

#: Secrets that are refused whatever their length (case-insensitive).
PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "secret",
        "password",
        "token",
        "admin",
        "default",
        "example",
        "test",
        "xxxxxxxxxxxxxxxx",
        "0000000000000000",
    }
)
#: Shortest bearer secret accepted, in characters.
MIN_SECRET_LENGTH = 16


def default_database_url() -> str:
    """Return the embedded default: a SQLite file under ``<cwd>/.fedprofile/``.

    Returns
    -------
    str
        ``sqlite:///<absolute cwd>/.fedprofile/server.sqlite``.
    """
    return f"sqlite:///{Path.cwd().resolve() / '.fedprofile' / 'server.sqlite'}"


def default_master_key_path() -> Path:
    """Return the development default: ``<cwd>/.fedprofile/master.key``.

    Returns
    -------
    Path
        The absolute path.
    """
    return Path.cwd().resolve() / ".fedprofile" / "master.key"


def default_signing_key_path() -> Path:
    """Return the development default: ``<cwd>/.fedprofile/signing.pem``."""
    return Path.cwd().resolve() / ".fedprofile" / "signing.pem"


def is_memory_database(url: str) -> bool:
    """Whether ``url`` names an in-memory SQLite database.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL.

    Returns
    -------
    bool
        True for ``sqlite://``, ``sqlite:///:memory:`` and ``file::memory:`` URLs.
    """
    if not url.startswith("sqlite"):
        return False
    database = url.split("://", 1)[-1].lstrip("/")
    return database in ("", ":memory:") or database.startswith("file::memory:")


def normalize_database_url(url: str) -> str:
    """Map ``postgres://`` and ``postgresql://`` URLs to the psycopg 3 driver.

    Parameters
    ----------
    url : str
        A SQLAlchemy database URL.

    Returns
    -------
    str
        The URL with ``postgresql+psycopg://`` as scheme when it named PostgreSQL without a
        driver; any other URL unchanged.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secret_problem(name: str, value: SecretStr | None) -> str | None:
    """Return why a configured secret is unacceptable, or None."""
    if value is None:
        return None
    raw = value.get_secret_value()
    if raw.strip().lower() in PLACEHOLDER_SECRETS:
        return f"{name} is a placeholder value; generate a random one (secrets.token_urlsafe(32))"
    if len(raw) < MIN_SECRET_LENGTH:
        return f"{name} is shorter than {MIN_SECRET_LENGTH} characters"
    return None


class ServerSettings(BaseSettings):
    """Settings of the server process (environment prefix ``FEDPROFILE_``).

    Parameters
    ----------
    database_url : str
        SQLAlchemy URL. Default: a SQLite file ``.fedprofile/server.sqlite`` under the working
        directory at construction time. ``postgres://``/``postgresql://`` are mapped to the
        psycopg 3 driver.
    environment : {"development", "production"}
        In production an enrollment token is mandatory.
    enrollment_token : SecretStr or None
        Shared secret an edge presents in ``X-Enrollment-Token`` to register. Without it (in
        development) only an admin bearer can register edges.
    admin_token : SecretStr or None
        Bearer secret of the ``admin`` role; without it admin routes answer 401.
    agent_token : SecretStr or None
        Bearer secret of the ``agent`` role (reads profiles for a stated purpose).
    host : str
        Interface ``fedprofile serve`` binds to.
    port : int
        TCP port ``fedprofile serve`` binds to.
    workers : int
        Worker processes of ``fedprofile serve`` (1-64, default 1; ``--workers`` overrides).
        Each worker has its own connection pool: see ``db_pool_size``.
    keep_alive : float
        Seconds an idle keep-alive connection stays open (default 75). Longer than the idle
        time-out of common clients and load balancers (5-60 s), so the client side closes
        first and never sends a request on a connection the server is closing.
    db_pool_size, db_max_overflow : int
        Connections each worker keeps open (default 10) and may open beyond them under load
        (default 10). A worker admits at most their sum of requests to the database at once;
        on PostgreSQL keep ``workers x (db_pool_size + db_max_overflow)`` below the server's
        ``max_connections`` (100 by default) minus what other clients need.
    db_pool_timeout : float
        Seconds a background job (not a request: requests are admitted only when a
        connection is free) waits for a pooled connection (default 30).
    db_queue_wait : float
        Seconds a request waits for a free database slot before 503 ``server_busy`` with
        ``Retry-After`` (default 60, a common proxy read time-out).
    auth_failure_limit, auth_failure_window, auth_lockout
        A client (address) that sends ``auth_failure_limit`` wrong tokens (default 20)
        within ``auth_failure_window`` seconds (default 60) is refused with 429 for
        ``auth_lockout`` seconds (default 300); each lockout is audited once
        (``auth.throttle``). Counted per worker process.
    max_body_bytes : int
        Largest request body a caller with a bearer token or console session may send
        (default 16 MiB: an edge's default batch of 200 uploads is about 1 MB). Checked
        before the body is read or parsed; above it, 413 ``body_too_large``.
    max_anonymous_body_bytes : int
        Largest body of a request without credentials (default 64 KiB: enrollment and
        console sign-in need a few hundred bytes).
    db_queue_limit : int
        Requests that may wait for a slot at once per worker (default 2000); the next one is
        answered 503 ``server_busy`` at once.
    catalogue_path : Path or None
        Field catalogue file; ``None`` uses the catalogue shipped with ``consent``.
    master_key_path : Path or None
        Master key ring file (mode 0600; see ``docs/keys.md``) that wraps the subjects' data
        keys of sensitive fields. Keep it out of database backups. ``None`` in development:
        ``.fedprofile/master.key`` under the working directory, created if missing (or an
        ephemeral in-memory key for an in-memory database). Required in production, where
        it must already exist.
    signing_key_path : Path or None
        Ed25519 key (PKCS#8 PEM, mode 0600) that signs consent receipts, erasure receipts and
        audit checkpoints. ``None`` in development: ``.fedprofile/signing.pem`` under the
        working directory, created if missing (ephemeral for an in-memory database).
        Required in production, where it must already exist.
    audit_checkpoint_every : int
        The audit log signs a checkpoint each time its size reaches a multiple of this
        number of entries (in the appending transaction); ``audit verify`` fails when the
        newest checkpoint is this many entries or more behind the head. Default 1000.
    audit_verify_workers : int
        Processes that verify a large audit log (100,000 entries or more) in parallel,
        split at its signed checkpoints; 0 (default) uses one per CPU core (at most 8), 1
        verifies in a single pass. Same result either way.
    identity_hub_limit : int
        Most pseudonyms one keyed identity token may be shared by and still link them into
        one person (default 5: a household's tablet or landline). A token shared by more is
        a *hub* (a shop phone, a dummy value that slipped past the edge): it links nobody
        and is listed for officers.
    identity_match_threshold, identity_review_floor : float
        Probabilistic linkage on the server: pairs with P(match) at or above the threshold
        are joined automatically (default 0.99), pairs from the floor up to it go to the
        officers' review queue (default 0.5). A false merge mixes two people's data, far
        worse than a missed link an officer can still make, so the threshold is the
        decision rule for a false merge costing 99 missed links (``fedprofile identity
        link`` on two files keeps 0.5, equal costs).
    dsr_due_days : int
        Calendar days between receiving a data-subject request and its due date (1-90,
        default 15: within PIPL's "timely" and GDPR Art. 12(3)'s one month). Open requests
        past it are flagged overdue.
    decision_policy_path : Path or None
        The decision policy (YAML, ``models/decisions/data/default_policy.yaml`` when
        ``None``). It is checked against the catalogue when the server starts, which refuses
        to start on a rule that reads a field its purpose may not use.
    experiment_key : SecretStr or None
        Hex key (at least 32 hex digits) of the keyed hash that assigns experiment arms.
        Required in production when the policy runs an experiment; in development a key is
        derived from the database URL (stable, but not secret).
    decision_audit_interval : float
        Seconds between batched audit appends of decisions (default 1.0).
    controller_name, controller_contact, controller_address : str or None
    controller_email, controller_phone, controller_url : str or None
        The personal-information handler (controller) named on every signed consent
        receipt: legal name, contact office (e.g. the personal-information protection
        officer), postal address, e-mail, phone, web page (PIPL Art. 17 and 52; Kantara
        ``piiControllers``). Name and e-mail are required in production; in development an
        unset name gives a receipt that says the controller is not configured.

    Raises
    ------
    pydantic.ValidationError
        If a secret is a placeholder or shorter than 16 characters, or if the environment is
        production and no enrollment token is set. (A production process without a usable
        master key file is refused when it opens it: :class:`MasterKeySource`.)
    """

    model_config = SettingsConfigDict(env_prefix="FEDPROFILE_", extra="ignore", frozen=True)

    database_url: str = Field(default_factory=default_database_url)
    environment: Literal["development", "production"] = "development"
    enrollment_token: SecretStr | None = None
    admin_token: SecretStr | None = None
    agent_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    keep_alive: float = Field(default=75.0, gt=0, le=3600)
    db_pool_size: int = Field(default=10, ge=1, le=500)
    db_max_overflow: int = Field(default=10, ge=0, le=500)
    db_pool_timeout: float = Field(default=30.0, gt=0, le=600)
    db_queue_wait: float = Field(default=60.0, gt=0, le=600)
    db_queue_limit: int = Field(default=2000, ge=0, le=1_000_000)
    auth_failure_limit: int = Field(default=20, ge=1, le=1_000_000_000)
    auth_failure_window: float = Field(default=60.0, gt=0, le=86400)
    auth_lockout: float = Field(default=300.0, gt=0, le=86400)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    max_anonymous_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    catalogue_path: Path | None = None
    master_key_path: Path | None = None
    signing_key_path: Path | None = None
    audit_checkpoint_every: int = Field(default=1000, ge=1)
    audit_verify_workers: int = Field(default=0, ge=0, le=64)
    dsr_due_days: int = Field(default=15, ge=1, le=90)
    identity_hub_limit: int = Field(default=5, ge=2, le=1000)
    identity_match_threshold: float = Field(default=0.99, gt=0.0, le=1.0)
    identity_review_floor: float = Field(default=0.5, gt=0.0, le=1.0)
    decision_policy_path: Path | None = None
    experiment_key: SecretStr | None = None
    decision_audit_interval: float = Field(default=1.0, gt=0, le=3600)
    controller_name: str | None = Field(default=None, min_length=1, max_length=200)
    controller_contact: str | None = Field(default=None, min_length=1, max_length=200)
    controller_address: str | None = Field(default=None, min_length=1, max_length=300)
    controller_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    controller_phone: str | None = Field(default=None, min_length=1, max_length=50)
    controller_url: str | None = Field(default=None, pattern=r"^https?://\S+$")

    @field_validator("database_url")
    @classmethod
    def _normalize_url(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("database_url must not be empty")
        return normalize_database_url(value.strip())

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Self:
        problems = [
            problem
            for problem in (
                _secret_problem("enrollment_token", self.enrollment_token),
                _secret_problem("admin_token", self.admin_token),
                _secret_problem("agent_token", self.agent_token),
            )
            if problem is not None
        ]
        if self.environment == "production" and self.enrollment_token is None:
            problems.append("enrollment_token is required when environment is production")
        if self.environment == "production" and (
            self.controller_name is None or self.controller_email is None
        ):
            problems.append(
                "controller_name and controller_email are required when environment is "
                "production (they are named on every signed consent receipt)"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def receipt_controller(self) -> PIIController:
        """Return the controller named on signed consent receipts.

        Unset optional parts read "see the privacy notice"; without a configured name
        (development only) the receipt says so rather than naming anyone.

        Returns
        -------
        PIIController
            The configured controller.
        """
        see_notice = "see the privacy notice / 见个人信息处理规则"
        return PIIController(
            name=self.controller_name or NOT_CONFIGURED_CONTROLLER,
            contact=self.controller_contact
            or "personal information protection officer / 个人信息保护负责人",
            address=self.controller_address or see_notice,
            email=self.controller_email or see_notice,
            phone=self.controller_phone or see_notice,
            url=self.controller_url,
        )


#: Name on receipts of a development server whose controller is not configured.
NOT_CONFIGURED_CONTROLLER = (
    "controller not configured (set FEDPROFILE_CONTROLLER_NAME) / 未配置个人信息处理者"
)


@functools.lru_cache(maxsize=1)
def get_settings() -> ServerSettings:
    """Build the process's settings from the environment, once.

    Returns
    -------
    ServerSettings
        The cached settings object.

    Raises
    ------
    SettingsError
        If the environment holds invalid values (see :class:`ServerSettings`); the message
        names each offending setting and rule, never a value.
    """
    try:
        return ServerSettings()
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> list[str]:
    """One line per problem: location and rule, without the offending input."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "settings"
        lines.append(f"{loc}: {err['msg']}")
    return lines


class MasterKeySource:
    """Where the process gets its master key ring: the configured file, re-read on change.

    Build one per process (the app's lifespan) and call :meth:`current` per request. The file
    is re-read only when its modification time, size or inode changes, so a rotation by
    ``rotate_master_key`` (another process) takes effect on the next request. In
    development, a missing file is created; with an in-memory database and no configured
    path the ring is ephemeral (the data dies with the process anyway).

    Parameters
    ----------
    settings : ServerSettings
        The process's settings.

    Raises
    ------
    SettingsError
        In production, if ``master_key_path`` is not set or the file is missing; in any
        environment, if the file is unusable (exposed, malformed, placeholder).
    """

    def __init__(self, settings: ServerSettings) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._ring: MasterKeyRing | None = None
        self._path: Path | None = settings.master_key_path
        production = settings.environment == "production"
        if self._path is None and is_memory_database(settings.database_url):
            self._ring = MasterKeyRing.generate()
            logger.info("in-memory database: using an ephemeral master key")
            return
        if self._path is None and production:
            raise SettingsError(["master_key_path is required when environment is production"])
        if self._path is None:
            self._path = default_master_key_path()
        if not self._path.exists():
            if production:
                raise SettingsError(
                    [
                        f"master_key_path: {self._path} does not exist; create it with the key "
                        "custody procedure in docs/keys.md"
                    ]
                )
            create_master_key_file(self._path)
        try:
            self.current()
        except KeyFileError as exc:
            raise SettingsError([f"master_key_path: {exc}"]) from None

    @property
    def path(self) -> Path | None:
        """The master key file (None for an ephemeral ring)."""
        return self._path

    def current(self) -> MasterKeyRing:
        """Return the ring, re-reading the file if it changed since the last call.

        Returns
        -------
        MasterKeyRing
            The current ring.

        Raises
        ------
        KeyFileError
            If the file became unusable (missing, exposed, malformed).
        """
        if self._path is None:
            if self._ring is None:
                raise KeyFileError("no master key ring")
            return self._ring
        try:
            info = self._path.stat()
        except FileNotFoundError:
            raise KeyFileError(f"master key file {self._path} does not exist") from None
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            if self._ring is None or stamp != self._stamp:
                self._ring = load_master_key_file(self._path)
                self._stamp = stamp
            return self._ring

    def __repr__(self) -> str:
        return f"MasterKeySource(path={str(self._path)!r})"


class SigningKeySource:
    """The process's evidence-signing key (receipts, checkpoints), opened once.

    Parameters
    ----------
    settings : ServerSettings
        The process's settings.

    Raises
    ------
    SettingsError
        In production, if ``signing_key_path`` is not set or the file is missing; in any
        environment, if the file is unusable (exposed, not an Ed25519 key).
    """

    def __init__(self, settings: ServerSettings) -> None:
        path = settings.signing_key_path
        production = settings.environment == "production"
        if path is None and is_memory_database(settings.database_url):
            self.path: Path | None = None
            self.key = SigningKey.generate()
            logger.info("in-memory database: using an ephemeral signing key")
            return
        if path is None and production:
            raise SettingsError(["signing_key_path is required when environment is production"])
        self.path = path or default_signing_key_path()
        if production and not self.path.exists():
            raise SettingsError(
                [
                    f"signing_key_path: {self.path} does not exist; create it with the key "
                    "custody procedure in docs/keys.md"
                ]
            )
        try:
            self.key = load_or_create_signing_key_file(self.path)
        except KeyFileError as exc:
            raise SettingsError([f"signing_key_path: {exc}"]) from None

    def __repr__(self) -> str:
        return f"SigningKeySource(path={str(self.path)!r}, key_id={self.key.verify_key.key_id!r})"
