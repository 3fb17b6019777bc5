"""``fedprofile decide run``: batch proactive-service and risk-alert triggers.

Mounted by the umbrella CLI. Settings come from ``get_settings()`` (``FEDPROFILE_*``): the
database, the catalogue and the decision policy. Triggers go to a JSONL queue file
(``--out``, appended, one trigger per line) or a webhook (``--webhook``, JSON batches of
``{"triggers": [...]}``, any 2xx accepts); both carry pseudonyms, the action and its reason,
never PII. The run is idempotent per person, rule and ``--period``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import Progress
from sqlalchemy import inspect
from sqlmodel import Session

from consent import FieldCatalogue, load_default_catalogue, load_default_purposes

from ..audit.checkpoint import policy_from_settings
from ..config import MasterKeySource, get_settings
from ..db import create_db_engine
from ..errors import DatabaseError
from ..principal import Principal
from ..tables.token import Role
from .batch import TriggerSink, run_batch
from .source import decision_setup

decide_app = typer.Typer(
    help="Decisions: batch proactive-service and risk-alert triggers.", no_args_is_help=True
)


def file_sink(path: Path) -> TriggerSink:
    """Append triggers to a JSONL file (flushed and synced before they count as delivered)."""

    def deliver(triggers: Sequence[dict[str, Any]]) -> None:
        with path.open("a", encoding="utf-8") as handle:
            for trigger in triggers:
                handle.write(json.dumps(trigger, ensure_ascii=False, sort_keys=True) + "\n")
            handle.flush()

    return deliver


def webhook_sink(url: str, *, timeout: float = 10.0) -> TriggerSink:
    """POST triggers to a webhook; anything but a 2xx answer stops the delivery."""

    def deliver(triggers: Sequence[dict[str, Any]]) -> None:
        response = httpx.post(url, json={"triggers": list(triggers)}, timeout=timeout)
        if not response.is_success:
            raise typer.BadParameter(
                f"the webhook answered {response.status_code}; undelivered triggers are kept "
                "and sent by the next run"
            )

    return deliver


@decide_app.command("run")
def decide_run_command(
    purpose: Annotated[
        str, typer.Option("--purpose", help="proactive_service, risk_control or marketing")
    ],
    period: Annotated[
        str | None,
        typer.Option("--period", help="Idempotency period (default: today, UTC, YYYY-MM-DD)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="JSONL queue file to append triggers to")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="URL that receives JSON trigger batches")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Database (default: FEDPROFILE_DATABASE_URL or the embedded file)"),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Evaluate every person for a purpose and deliver new triggers once per period."""
    if (out is None) == (webhook is None):
        raise typer.BadParameter("give exactly one of --out FILE or --webhook URL")
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise typer.BadParameter("--webhook must be an http(s) URL")
    settings = get_settings()
    if database_url is not None:
        settings = settings.model_copy(update={"database_url": database_url})
    catalogue = (
        load_default_catalogue()
        if settings.catalogue_path is None
        else FieldCatalogue.load(settings.catalogue_path)
    )
    purposes = load_default_purposes()
    setup = decision_setup(settings, catalogue, purposes)
    now = datetime.now(UTC)
    engine = create_db_engine(settings.database_url)
    try:
        if not inspect(engine).has_table("decision"):
            raise DatabaseError(
                "no decision tables in the configured database; check FEDPROFILE_DATABASE_URL "
                "or run `fedprofile serve` once to migrate it"
            )
        sink = file_sink(out) if out is not None else webhook_sink(str(webhook))
        with Progress(transient=True) as bar:
            task = bar.add_task(f"deciding {purpose}", total=None)
            report = run_batch(
                session_factory=lambda: Session(engine, expire_on_commit=False),
                setup=setup, catalogue=catalogue, purposes=purposes, purpose=purpose,
                period=period or now.date().isoformat(), sink=sink,
                principal=Principal(role=Role.ADMIN, name="decide-run"), at=now,
                checkpoints=policy_from_settings(settings),
                master_keys=MasterKeySource(settings).current(),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
        from .audit_flush import flush_decisions

        flush_decisions(engine, checkpoints=policy_from_settings(settings))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    finally:
        engine.dispose()
    if json_output:
        typer.echo(json.dumps(report.to_dict(), sort_keys=True))
        return
    typer.echo(
        f"decide {report.purpose} {report.period}: {report.persons} person(s), "
        f"{report.evaluated} with consent, {report.created} new trigger(s), "
        f"{report.existing} already made, {report.delivered} delivered"
    )
    for rule, count in sorted(report.by_rule.items()):
        typer.echo(f"  {rule}: {count}")
