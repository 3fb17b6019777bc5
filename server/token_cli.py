"""``fedprofile token issue``: bootstrap a named bearer token from the server's host.

Mounted by the umbrella CLI next to the other server commands. It writes straight to the
server database (``FEDPROFILE_DATABASE_URL``), so whoever can run it already holds the data:
use it to issue the first compliance-officer or admin tokens, later ones through
``POST /api/v1/tokens``. The token is printed once and stored only as its SHA-256; the issue
is audited (``token.issue``, actor ``cli``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from sqlalchemy import inspect
from sqlmodel import Session

from models import Channel

from .audit.checkpoint import policy_from_settings
from .audit.sink import DatabaseAuditSink
from .config import get_settings
from .crud.token_issue import issue_for_holder
from .db import create_db_engine, upgrade_database
from .errors import DatabaseError
from .tables.token import Role

logger = logging.getLogger(__name__)

token_app = typer.Typer(
    help="Named bearer tokens for staff, edges and subjects.", no_args_is_help=True
)


@token_app.command("issue")
def issue_command(
    role: Annotated[Role, typer.Option(help="The token's role")],
    name: Annotated[
        str | None,
        typer.Option(help="Holder name (staff roles; a new edge's name), e.g. li.wei"),
    ] = None,
    channel: Annotated[
        Channel | None, typer.Option(help="For --role edge: register a new edge of this channel")
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="For --role subject: the pseudonym (ps_ + 64 hex)")
    ] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="Days until the token stops working")
    ] = None,
    migrate: Annotated[
        bool, typer.Option(help="Run database migrations (alembic upgrade head) first")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the token and its metadata as JSON")
    ] = False,
) -> None:
    """Issue a bearer token and print it once (it cannot be shown again)."""
    settings = get_settings()
    if migrate:
        upgrade_database(settings.database_url)
    engine = create_db_engine(settings.database_url)
    at = datetime.now(UTC)
    try:
        if not inspect(engine).has_table("api_token"):
            raise DatabaseError(
                "no token table in the configured database; run with --migrate or "
                "`fedprofile serve` once"
            )
        with Session(engine, expire_on_commit=False) as session:
            try:
                raw, info = issue_for_holder(
                    session=session,
                    role=role,
                    actor="cli",
                    actor_role=Role.ADMIN.value,
                    audit=DatabaseAuditSink(
                        session, checkpoints=policy_from_settings(settings)
                    ),
                    at=at,
                    name=name,
                    channel=channel,
                    subject=subject,
                    expires_at=None
                    if expires_in_days is None
                    else at + timedelta(days=expires_in_days),
                )
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
    finally:
        engine.dispose()
    if json_output:
        typer.echo(json.dumps({"token": raw, "info": info.model_dump(mode="json")}))
        return
    holder = info.holder_name or info.subject or info.edge_id
    typer.echo(f"issued {info.role} token {info.id} for {holder}; shown once:", err=True)
    typer.echo(raw)
