"""Database engine, schema migrations and the session dependency.

Alembic owns the schema: :func:`upgrade_database` runs ``upgrade head`` programmatically with
the migrations shipped in ``server/migrations``. SQLite (the embedded default) runs in WAL
mode with foreign keys enforced; PostgreSQL is reached through psycopg 3.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from .config import normalize_database_url
from .errors import DatabaseError

logger = logging.getLogger(__name__)

#: Folder holding ``alembic.ini``, ``env.py`` and ``versions/``.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Seconds a SQLite writer waits for a lock before failing.
SQLITE_BUSY_TIMEOUT_S = 15.0
#: Pool defaults (the settings ``db_pool_size``, ``db_max_overflow``, ``db_pool_timeout``).
POOL_SIZE = 10
MAX_OVERFLOW = 10
POOL_TIMEOUT_S = 30.0


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Turn on WAL and foreign keys on every new SQLite connection."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_db_engine(
    url: str,
    *,
    pool_size: int = POOL_SIZE,
    max_overflow: int = MAX_OVERFLOW,
    pool_timeout: float = POOL_TIMEOUT_S,
) -> Engine:
    """Create the engine for ``url`` with the settings this server relies on.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///path`` (the parent folder is created), ``sqlite://`` for an
        in-memory database shared by all threads, or a PostgreSQL URL (``postgres://`` and
        ``postgresql://`` are mapped to the psycopg 3 driver).

    Returns
    -------
    Engine
        For SQLite: WAL journal, ``foreign_keys=ON``, ``check_same_thread=False`` and a
        15 s busy timeout. For PostgreSQL: pre-ping on checkout.
    pool_size, max_overflow, pool_timeout
        The connection pool (file SQLite and PostgreSQL; an in-memory SQLite database has
        one shared connection). The API admits at most ``pool_size + max_overflow``
        requests to the database at once (``server.api.admission``).

    Raises
    ------
    DatabaseError
        If the URL cannot be parsed or names an unsupported backend.
    """
    url = normalize_database_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            "database URL cannot be parsed; check FEDPROFILE_DATABASE_URL"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        }
        if in_memory:
            kwargs["poolclass"] = StaticPool
        else:
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    if backend == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
        )
    raise DatabaseError(f"unsupported database backend {backend!r}; use sqlite or postgresql")


def alembic_config() -> Config:
    """Return the Alembic configuration of the shipped migrations.

    Returns
    -------
    Config
        Configuration whose ``script_location`` is ``server/migrations``.
    """
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_database(url: str) -> None:
    """Bring the schema at ``url`` to the newest migration (``alembic upgrade head``).

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the database (see :func:`create_db_engine`).

    Raises
    ------
    DatabaseError
        If the database cannot be reached or a migration fails.
    """
    engine = create_db_engine(url)
    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")  # parallel feature branches until merged
    except SQLAlchemyError as exc:
        raise DatabaseError(
            f"database migration failed ({type(exc).__name__}); check that the database is "
            "reachable and FEDPROFILE_DATABASE_URL is right"
        ) from None
    finally:
        engine.dispose()
    logger.info("database schema is at the newest migration (%s)", engine.dialect.name)
