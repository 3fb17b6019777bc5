"""``fedprofile retention run``: delete stored fields past their catalogued retention.

Mounted by the umbrella CLI next to the other server commands (``server.cli``). Settings
come from ``get_settings()`` (``FEDPROFILE_*``): the database and the field catalogue. What
was deleted is recorded in the audit log (``retention.purge``: field names and counts, never
values); ``--dry-run`` only counts.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlalchemy import inspect
from sqlmodel import Session

from consent import FieldCatalogue, load_default_catalogue

from .audit.checkpoint import CheckpointPolicy, policy_from_settings
from .audit.sink import DatabaseAuditSink
from .config import get_settings
from .crud.retention import RetentionReport, purge_expired_fields
from .db import create_db_engine
from .errors import DatabaseError

logger = logging.getLogger(__name__)

retention_app = typer.Typer(
    help="Retention: delete profile fields kept past their catalogued time.",
    no_args_is_help=True,
)


def run_retention(
    *,
    database_url: str,
    catalogue: FieldCatalogue,
    at: datetime,
    dry_run: bool,
    checkpoints: CheckpointPolicy | None = None,
) -> RetentionReport:
    """Open the database and run :func:`server.crud.retention.purge_expired_fields`.

    Parameters
    ----------
    database_url : str
        The server database.
    catalogue : FieldCatalogue
        The catalogue in force.
    at : datetime
        The moment retention is evaluated at.
    dry_run : bool
        Only count.
    checkpoints : CheckpointPolicy or None
        How audit checkpoints falling due in the job's appends are signed (the server's
        key and interval, ``policy_from_settings``); None signs none.

    Returns
    -------
    RetentionReport
        What was (or would be) deleted.

    Raises
    ------
    DatabaseError
        If the database holds no profile table (not migrated).
    """
    engine = create_db_engine(database_url)
    try:
        if not inspect(engine).has_table("profile_field"):
            raise DatabaseError(
                "no profile store in the configured database; check FEDPROFILE_DATABASE_URL "
                "or run `fedprofile serve` once to migrate it"
            )
        with Session(engine) as session:
            return purge_expired_fields(
                session=session,
                catalogue=catalogue,
                audit=DatabaseAuditSink(session, checkpoints=checkpoints),
                at=at,
                dry_run=dry_run,
            )
    finally:
        engine.dispose()


@retention_app.command("run")
def retention_run_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(help="Database (default: FEDPROFILE_DATABASE_URL or the embedded file)"),
    ] = None,
) -> None:
    """Delete fields past their retention and audit what went (counts per field)."""
    settings = get_settings()
    url = database_url if database_url is not None else settings.database_url
    catalogue = (
        load_default_catalogue()
        if settings.catalogue_path is None
        else FieldCatalogue.load(settings.catalogue_path)
    )
    report = run_retention(
        database_url=url,
        catalogue=catalogue,
        at=datetime.now(UTC),
        dry_run=dry_run,
        checkpoints=policy_from_settings(settings),
    )
    if json_output:
        typer.echo(json.dumps(report.to_dict(), sort_keys=True))
        return
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"retention: {verb} {report.total} field(s) of {report.subjects} subject(s)")
    for name, count in sorted(report.deleted.items()):
        typer.echo(f"  {name}: {count}")
