"""Server commands mounted by the umbrella CLI: ``serve`` and ``audit ...``.

``serve`` migrates the database (Alembic ``upgrade head``) and runs the API under uvicorn.
``audit verify`` checks the whole log (hash chain, salted commitments, checkpoint signatures
and Merkle roots) and exits 7 when it is broken, naming the first bad sequence number and the
problem; ``audit checkpoint`` signs a checkpoint on demand; ``audit export`` writes a signed
range that ``audit verify-export`` checks offline with only the public key (docs/audit.md).
Settings come from ``get_settings()`` (``FEDPROFILE_*``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from models import API_PREFIX
from privacy import KeyFileError, VerifyKey, load_signing_key_file

from .audit.append import create_checkpoint
from .audit.checkpoint import policy_from_settings
from .audit.export import export_range, verify_export
from .audit.log import VerifyReport, count_entries, verify_chain
from .audit.parallel import resolve_workers
from .audit.query import signed_checkpoint
from .config import ServerSettings, default_signing_key_path, get_settings
from .db import create_db_engine, upgrade_database
from .errors import DatabaseError

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
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes (default: FEDPROFILE_WORKERS or 1); see docs/deploy.md",
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log one line per request (subjects redacted)")
    ] = True,
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
    processes = workers if workers is not None else settings.workers
    from .main import configure_logging  # noqa: PLC0415 - the web app loads slowly

    configure_logging(log_level.upper())
    if migrate:
        upgrade_database(settings.database_url)
    backend = make_url(settings.database_url).get_backend_name()
    scheme = "https" if ssl_certfile is not None else "http"
    typer.echo(
        f"fedprofile API on {scheme}://{bind_host}:{bind_port}{API_PREFIX} ({backend} database, "
        f"{processes} worker{'s' if processes > 1 else ''})"
    )
    # An import string, not an app object: uvicorn starts each worker process from it, and
    # each worker builds its own engine and pool from the same FEDPROFILE_* environment.
    uvicorn.run(
        "server.main:create_served_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=processes,
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=int(settings.keep_alive),
        ssl_certfile=None if ssl_certfile is None else str(ssl_certfile),
        ssl_keyfile=None if ssl_keyfile is None else str(ssl_keyfile),
    )


audit_app = typer.Typer(help="Tamper-evident audit log commands.", no_args_is_help=True)

PublicKeyOption = Annotated[
    str | None,
    typer.Option(
        "--public-key",
        help="Pin this Ed25519 public key (base64url text, or a file holding it, or the "
        "signing key's PEM file); default: the configured signing key, if present",
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(help="Database (default: FEDPROFILE_DATABASE_URL or the embedded file)"),
]


def parse_public_key(value: str) -> VerifyKey:
    """Return the public key given as base64url text or a file (text or PEM private key).

    Parameters
    ----------
    value : str
        ``GET /api/v1/keys/signing-key`` text, or a path to a file holding it or to the
        signing key's PEM file.

    Returns
    -------
    VerifyKey
        The key to pin.

    Raises
    ------
    typer.BadParameter
        If it is neither a key nor a readable key file.
    """
    path = Path(value)
    try:
        if path.is_file():
            text = path.read_text(encoding="utf-8").strip()
            if "PRIVATE KEY" in text:
                return load_signing_key_file(path).verify_key
            return VerifyKey.from_text(text)
        return VerifyKey.from_text(value.strip())
    except (ValueError, OSError, KeyFileError):
        raise typer.BadParameter(
            "--public-key must be a base64url Ed25519 public key or a file holding one"
        ) from None


def _pinned_keys(value: str | None, settings: ServerSettings) -> list[VerifyKey] | None:
    """Return the keys to pin: ``--public-key``, else the configured key file if it exists."""
    if value is not None:
        return [parse_public_key(value)]
    path = settings.signing_key_path or default_signing_key_path()
    if path.is_file():
        return [load_signing_key_file(path).verify_key]
    return None


def _open_log(database_url: str) -> Engine:
    """Return an engine on ``database_url``, refusing a database without an audit log."""
    engine = create_db_engine(database_url)
    if not inspect(engine).has_table("audit_entry"):
        engine.dispose()
        raise DatabaseError(
            "no audit log in the configured database; check FEDPROFILE_DATABASE_URL "
            "or run `fedprofile serve` once to migrate it"
        )
    return engine


def _verify(
    database_url: str,
    *,
    show_progress: bool,
    trusted: list[VerifyKey] | None,
    checkpoint_every: int | None,
    workers: int,
) -> VerifyReport:
    """Verify the log at ``database_url`` with an optional progress bar on stderr."""
    engine = _open_log(database_url)
    try:
        with Session(engine) as session:
            total = count_entries(session=session)
            with Progress(
                TextColumn("verifying audit log"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
                disable=not show_progress,
                # No refresh thread: a single-threaded process forks its verify workers
                # (spawning them costs about a second); the bar redraws on each update.
                auto_refresh=False,
            ) as bar:
                task = bar.add_task("verify", total=total)
                return verify_chain(
                    session=session,
                    progress=lambda done: bar.update(task, completed=done, refresh=True),
                    trusted_keys=trusted,
                    checkpoint_every=checkpoint_every,
                    workers=workers,
                )
    finally:
        engine.dispose()


@audit_app.command("verify")
def verify_command(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout")
    ] = False,
    database_url: DatabaseOption = None,
    public_key: PublicKeyOption = None,
    require_checkpoints: Annotated[
        bool,
        typer.Option(help="Fail when a checkpoint is missing at a multiple of the interval"),
    ] = True,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Processes for a log of 100,000+ entries, split at signed checkpoints "
            "(0 = one per core; default FEDPROFILE_AUDIT_VERIFY_WORKERS)",
        ),
    ] = None,
) -> None:
    """Check the whole audit log: chain, salted commitments, checkpoint signatures, Merkle roots.

    Exits 7 naming the first bad entry (seq) and the kind of problem when it is broken.
    """
    settings = get_settings()
    url = database_url if database_url is not None else settings.database_url
    report = _verify(
        url,
        show_progress=not json_output,
        trusted=_pinned_keys(public_key, settings),
        checkpoint_every=settings.audit_checkpoint_every if require_checkpoints else None,
        workers=resolve_workers(settings.audit_verify_workers if workers is None else workers),
    )
    if json_output:
        typer.echo(report.model_dump_json())
    elif report.ok:
        typer.echo(
            f"audit log intact: {report.entries} entries, {report.checkpoints} signed "
            f"checkpoint(s){'' if report.pinned else ' (signatures not pinned)'}, "
            f"head {report.head_hash}"
        )
    else:
        reason = report.reason.value if report.reason is not None else "unknown"
        typer.echo(
            f"audit log BROKEN at seq {report.first_bad_seq}: {reason} "
            f"({report.entries} entries verified before it; last good checkpoint "
            f"{report.last_good_checkpoint})",
            err=True,
        )
    if not report.ok:
        raise typer.Exit(EXIT_CHAIN_BROKEN)


@audit_app.command("checkpoint")
def checkpoint_command(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the signed checkpoint as JSON on stdout")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Sign a checkpoint at the current head now (on demand, besides every N entries)."""
    settings = get_settings()
    engine = _open_log(database_url if database_url is not None else settings.database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            checkpoint = create_checkpoint(session=session, policy=policy_from_settings(settings))
            session.commit()
            signed = signed_checkpoint(checkpoint)
    finally:
        engine.dispose()
    if json_output:
        typer.echo(signed.model_dump_json())
    else:
        typer.echo(
            f"checkpoint at size {checkpoint.size}: root {checkpoint.root_hash} "
            f"(key {checkpoint.key_id})"
        )


@audit_app.command("export")
def export_command(
    first: Annotated[int, typer.Option("--from", min=1, help="First sequence number")],
    last: Annotated[int, typer.Option("--to", min=1, help="Last sequence number")],
    out: Annotated[Path, typer.Option("--out", help="File to write the signed JSON to")],
    database_url: DatabaseOption = None,
) -> None:
    """Write entries FROM..TO as signed JSON with the covering checkpoint and Merkle proof."""
    if last < first:
        raise typer.BadParameter("--to must not be below --from")
    settings = get_settings()
    engine = _open_log(database_url if database_url is not None else settings.database_url)
    try:
        with Session(engine) as session:
            export = export_range(
                session=session, first=first, last=last, policy=policy_from_settings(settings)
            )
            session.commit()
    finally:
        engine.dispose()
    out.write_text(json.dumps(export, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    typer.echo(f"exported entries {first}..{last} to {out} (key {export['key_id']})")


@audit_app.command("verify-export")
def verify_export_command(
    file: Annotated[Path, typer.Argument(help="An export written by `audit export`")],
    public_key: Annotated[
        str,
        typer.Option(
            "--public-key", help="The server's Ed25519 public key (base64url text or a file)"
        ),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout")
    ] = False,
) -> None:
    """Check an export offline with only the public key; exit 7 if it does not verify."""
    key = parse_public_key(public_key)
    try:
        export = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise typer.BadParameter(f"{file} is not a readable JSON file") from None
    check = verify_export(export if isinstance(export, dict) else {}, public_key=key)
    if json_output:
        typer.echo(check.model_dump_json())
    elif check.ok:
        typer.echo(
            f"export verifies: entries {check.first}..{check.last} are in the log signed "
            f"at size {check.checkpoint_size} (key {key.key_id})"
        )
    else:
        reason = check.reason.value if check.reason is not None else "unknown"
        where = "" if check.first_bad_seq is None else f" at seq {check.first_bad_seq}"
        typer.echo(f"export does NOT verify{where}: {reason}", err=True)
    if not check.ok:
        raise typer.Exit(EXIT_CHAIN_BROKEN)
