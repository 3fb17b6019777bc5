"""Server commands mounted by the umbrella CLI: ``serve`` and ``audit verify``.

``serve`` migrates the database (Alembic ``upgrade head``) and runs the API under uvicorn.
``audit verify`` recomputes the hash chain and exits 7 when it is broken, naming the first bad
sequence number. Settings come from ``get_settings()`` (``FEDPROFILE_*``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlmodel import Session

from models import API_PREFIX

from .audit.log import VerifyReport, count_entries, verify_chain
from .config import get_settings
from .db import create_db_engine, upgrade_database
from .errors import DatabaseError
from .main import configure_logging, create_app

logger = logging.getLogger(__name__)

#: Exit code of ``audit verify`` when the chain is broken.
EXIT_CHAIN_BROKEN = 7

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


def serve_command(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: FEDPROFILE_HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="TCP port (default: FEDPROFILE_PORT or 8000)"),
    ] = None,
    migrate: Annotated[
        bool, typer.Option(help="Run database migrations (alembic upgrade head) first")
    ] = True,
    log_level: Annotated[LogLevel, typer.Option(help="Log level of the server")] = "info",
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM); serve HTTPS when given")
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(help="TLS private key (PEM) of --ssl-certfile")
    ] = None,
) -> None:
    """Serve the fedprofile API (profiles, consents, ledgers, audit) under uvicorn."""
    import uvicorn

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise typer.BadParameter("give both --ssl-certfile and --ssl-keyfile, or neither")
    for path in (ssl_certfile, ssl_keyfile):
        if path is not None and not path.is_file():
            raise typer.BadParameter(f"{path} is not a readable file")
    settings = get_settings()
    bind_host = host if host is not None else settings.host
    bind_port = port if port is not None else settings.port
    configure_logging(log_level.upper())
    if migrate:
        upgrade_database(settings.database_url)
    backend = make_url(settings.database_url).get_backend_name()
    scheme = "https" if ssl_certfile is not None else "http"
    typer.echo(
        f"fedprofile API on {scheme}://{bind_host}:{bind_port}{API_PREFIX} ({backend} database)"
    )
    uvicorn.run(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_level=log_level,
        ssl_certfile=None if ssl_certfile is None else str(ssl_certfile),
        ssl_keyfile=None if ssl_keyfile is None else str(ssl_keyfile),
    )


audit_app = typer.Typer(help="Tamper-evident audit log commands.", no_args_is_help=True)


def _verify(database_url: str, *, show_progress: bool) -> VerifyReport:
    """Verify the chain at ``database_url`` with an optional progress bar on stderr."""
    engine = create_db_engine(database_url)
    try:
        if not inspect(engine).has_table("audit_entry"):
            raise DatabaseError(
                "no audit log in the configured database; check FEDPROFILE_DATABASE_URL "
                "or run `fedprofile serve` once to migrate it"
            )
        with Session(engine) as session:
            total = count_entries(session=session)
            with Progress(
                TextColumn("verifying audit log"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
                disable=not show_progress,
            ) as bar:
                task = bar.add_task("verify", total=total)
                return verify_chain(
                    session=session, progress=lambda done: bar.update(task, completed=done)
                )
    finally:
        engine.dispose()


@audit_app.command("verify")
def verify_command(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Database to verify (default: FEDPROFILE_DATABASE_URL or the embedded file)"
        ),
    ] = None,
) -> None:
    """Recompute the audit hash chain; exit 7 and name the first bad entry if broken."""
    url = database_url if database_url is not None else get_settings().database_url
    report = _verify(url, show_progress=not json_output)
    if json_output:
        typer.echo(report.model_dump_json())
    elif report.ok:
        typer.echo(f"audit log intact: {report.entries} entries, head {report.head_hash}")
    else:
        reason = report.reason.value if report.reason is not None else "unknown"
        typer.echo(
            f"audit log BROKEN at seq {report.first_bad_seq}: {reason} "
            f"({report.entries} entries verified before it)",
            err=True,
        )
    if not report.ok:
        raise typer.Exit(EXIT_CHAIN_BROKEN)
