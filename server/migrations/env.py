"""Alembic environment of the fedprofile server schema.

The target metadata is ``SQLModel.metadata`` with every table module of ``server.tables``
imported. A connection passed in ``config.attributes["connection"]`` (what
``server.db.upgrade_database`` does) is used as is; otherwise the URL comes from
``FEDPROFILE_DATABASE_URL`` through the server settings. SQLite runs in batch mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import server.tables  # noqa: F401  (registers every table on SQLModel.metadata)

target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    """Configure the context on ``connection`` and run the migrations."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL for the configured URL without connecting."""
    from server.config import get_settings

    url = get_settings().database_url
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection, or on the settings' database."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from server.config import get_settings
    from server.db import create_db_engine

    engine = create_db_engine(get_settings().database_url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
