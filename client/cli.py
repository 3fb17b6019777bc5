"""``fedprofile edge ...``: one edge's lifecycle (init, ingest, profile, sync, status).

Mounted by the umbrella ``fedprofile/cli.py``. Commands raise client-room errors with
one-line actionable messages; the umbrella turns them into exit codes. ``ingest`` exits
with code 3 when any line was rejected (good lines are kept). Output never contains raw
identifiers, message text or key material: counts, pseudonymous ids and reason codes only.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from models import Channel

from .config import ClientSettings, get_client_settings
from .credentials import load_credentials
from .edge import init_edge, validate_edge_name
from .errors import (
    EdgeConfigError,
    EdgeNotInitialisedError,
    ScrubberUnavailableError,
    ServerUnavailableError,
    UploadRefusedError,
)
from .feed import sync_subject_events
from .identity import IdentityResolver
from .ingest import IngestReport, ScrubbedText, ingest_file
from .ingest_quality import record_ingest_quality
from .profile import PROFILE_WATERMARK_META, ProfileScope, build_profiles
from .rekey import DEFAULT_BATCH_SIZE, open_edge_pseudonymizer, rekey_edge
from .rekey_transport import rekey_transport
from .store import STORE_FILENAME, EdgeStore
from .uploader import EdgeUploader, utc_now

if TYPE_CHECKING:
    from .text_profile import TextScoringReport, TextSignals

logger = logging.getLogger(__name__)

EXIT_INPUT_REJECTED = 3
#: Global model whose scores become ``score.*`` profile fields.
SCORING_MODEL = "behaviour"

edge_app = typer.Typer(
    help="One edge's lifecycle: init, ingest, profile, sync, status, rekey.",
    no_args_is_help=True,
    add_completion=False,
)

EdgeDirOption = Annotated[
    Path | None,
    typer.Option(
        "--edge-dir", help="Edge directory (default: FEDPROFILE_EDGE_DIR or ./.fedprofile/edge)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON report for programs.")]


# ------------------------------------------------------------------ helpers
def _settings(**overrides: Any) -> ClientSettings:
    """Return the process settings with command-line overrides applied."""
    return get_client_settings().override(**overrides)


def _open_edge(settings: ClientSettings) -> EdgeStore:
    """Open an initialised edge's store, refusing directories that hold none."""
    if not (settings.edge_dir / STORE_FILENAME).exists():
        raise EdgeNotInitialisedError(settings.edge_dir)
    store = EdgeStore.for_edge_dir(settings.edge_dir)
    if store.get_meta("edge_name") is None:
        store.close()
        raise EdgeNotInitialisedError(settings.edge_dir)
    return store


class _LazyDetector:
    """Builds ``privacy.PIIDetector`` on first use (Presidio is slow to import)."""

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._detector: Any = None

    def scrub_many(
        self, texts: Sequence[str], *, lang: Literal["zh", "en"]
    ) -> Sequence[ScrubbedText]:
        if self._detector is None:
            try:
                privacy = importlib.import_module("privacy")
                self._detector = privacy.PIIDetector.create(self._settings.pii)
            except (ImportError, AttributeError) as exc:
                raise ScrubberUnavailableError(
                    f"the PII detector cannot be built ({type(exc).__name__}); messages are "
                    "not stored unmasked, so ingestion of message lines stopped"
                ) from None
        results: Sequence[ScrubbedText] = self._detector.scrub_many(texts, lang=lang)
        return results


@contextmanager
def _progress(description: str, *, total: int, enabled: bool = True) -> Iterator[Progress]:
    """Show a transient progress bar on stderr."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )
    with progress:
        progress.add_task(description, total=total)
        yield progress


def _advance(bar: Progress, *, base: int) -> Callable[[int, int], None]:
    """Return a progress hook moving the bar's only task to ``base + done``."""

    def update(done: int, total: int) -> None:
        bar.update(
            bar.task_ids[0], completed=base + done, total=max(bar.tasks[0].total or 0, base + total)
        )

    return update


def _count_lines(path: Path) -> int:
    """Return the number of lines of ``path`` (0 when it does not exist)."""
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _echo_json(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))


def _echo_table(title: str, rows: dict[str, Any]) -> None:
    console = Console()
    console.print(f"[bold]{title}[/bold]")
    for key, value in rows.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        console.print(f"  {key:<22} {value}")


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "use ISO 8601 with a timezone, e.g. 2026-11-01T12:00:00+08:00"
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter("the time needs a timezone, e.g. 2026-11-01T12:00:00Z")
    return moment.astimezone(UTC)


# ------------------------------------------------------------------ commands
@edge_app.command("init")
def init_command(
    name: Annotated[str, typer.Option("--name", help="Edge name (letters, digits, _.-).")],
    channel: Annotated[Channel, typer.Option("--channel", help="Channel this edge serves.")],
    edge_dir: EdgeDirOption = None,
    tenant_key: Annotated[
        Path | None,
        typer.Option(
            "--tenant-key",
            help="Use this shared tenant key file (mode 0600) instead of creating one.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an edge: its store, and a tenant key file (0600) unless a shared one is given."""
    settings = _settings(edge_dir=edge_dir, tenant_key_path=tenant_key)
    try:
        validate_edge_name(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from None
    info = init_edge(
        edge_dir=settings.edge_dir, name=name, channel=channel, tenant_key=settings.tenant_key_path
    )
    result = {
        "edge_dir": str(info.edge_dir),
        "name": info.name,
        "channel": info.channel,
        "tenant_key": str(info.tenant_key),
        "tenant_key_created": info.tenant_key_created,
        "already_initialised": info.already_initialised,
    }
    if as_json:
        _echo_json(result)
    else:
        _echo_table("edge initialised", result)


@edge_app.command("ingest")
def ingest_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Input files: JSON lines (.jsonl) or CSV (.csv); see docs/edge-input.md."
        ),
    ],
    edge_dir: EdgeDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate, pseudonymise and mask input lines into the edge store.

    Rejected lines go to <edge-dir>/quarantine.jsonl with their line numbers; the command then
    exits with code 3 (good lines are kept).
    """
    settings = _settings(edge_dir=edge_dir)
    with _open_edge(settings) as store:
        # the current key generation; refused while a tenant key rotation is unfinished
        pseudonymizer = open_edge_pseudonymizer(store, override=settings.tenant_key_path)
        resolver = IdentityResolver(pseudonymizer)
        detector = _LazyDetector(settings)
        report = IngestReport()
        sizes = [f.stat().st_size if f.is_file() else 0 for f in files]
        with _progress("ingesting", total=sum(sizes), enabled=not as_json) as bar:
            done = 0
            for path, size in zip(files, sizes, strict=True):
                one = ingest_file(
                    store=store,
                    path=path,
                    pseudonymizer=pseudonymizer,
                    detector=detector,
                    resolver=resolver,
                    quarantine=settings.quarantine_path,
                    progress=_advance(bar, base=done),
                )
                done += size
                report.merge(one)
        # How this export compares with the edge's earlier ones (client.ingest_quality).
        quality = record_ingest_quality(store, report, at=datetime.now(UTC))
    if as_json:
        _echo_json(report.to_dict() | {"quality": quality.to_dict()})
    else:
        data = report.to_dict()
        errors = data.pop("errors")
        _echo_table("ingest report", data)
        for line in errors:
            typer.echo(f"  {line}")
        for flag in quality.flags:
            typer.echo(f"  data quality: {flag}")
    if report.total_rejected:
        raise typer.Exit(EXIT_INPUT_REJECTED)


@edge_app.command("profile")
def profile_command(
    edge_dir: EdgeDirOption = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Build profiles as of this ISO time (default: now).")
    ] = None,
    touched: Annotated[
        bool,
        typer.Option(
            "--touched",
            help="Refresh only subjects whose events or messages changed since the last build "
            "(run a full build after a new global model).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compute features, tags, model scores and text signals (intent, emotion, urgency).

    New messages of the last 30 days are scored with the edge's global text model (the
    version is printed); agents' labels win over the model's.
    """
    settings = _settings(edge_dir=edge_dir)
    moment = _parse_now(now)
    with _open_edge(settings) as store:
        scores = _model_scores(store, now=moment)
        scope = ProfileScope.TOUCHED if touched else None
        text, scoring = _text_signals(store, now=moment, touched=touched)
        report = build_profiles(store=store, now=moment, scores=scores, text=text, subjects=scope)
    data = {
        **report.to_dict(),
        "as_of": moment.isoformat(),
        "model_scores": scores is not None,
        "text_model": scoring.model_version or "none",
        "text_heads_published": ", ".join(scoring.published_heads) or "none",
        "messages_scored": scoring.scored,
    }
    if as_json:
        _echo_json(data)
    else:
        _echo_table("profiles built", data)


def _text_signals(
    store: EdgeStore, *, now: datetime, touched: bool
) -> tuple[dict[str, TextSignals], TextScoringReport]:
    """Score new messages with the edge's text model and summarise them per subject.

    A touched build scores and summarises the subjects that changed since the last build
    (the same set ``build_profiles`` refreshes).
    """
    from .text_profile import text_signals_for  # imports torch: only when profiles are built

    subjects = (
        store.touched_subjects(since=int(store.get_meta(PROFILE_WATERMARK_META) or 0))
        if touched
        else None
    )
    return text_signals_for(store, now=now, subjects=subjects)


def _model_scores(store: EdgeStore, *, now: datetime) -> dict[str, dict[str, float]] | None:
    """Return scores from ``client.scoring`` when the edge holds a global model, else None."""
    if store.load_global_model(SCORING_MODEL) is None:
        return None  # no model yet: do not import torch at all
    try:
        scoring = importlib.import_module("client.scoring")
    except ImportError:
        logger.info("model scoring is not available on this edge")
        return None
    scores: dict[str, dict[str, float]] = scoring.score_subjects(
        store, now=now, model=SCORING_MODEL
    )
    return scores or None


@edge_app.command("fetch-model")
def fetch_model_command(
    edge_dir: EdgeDirOption = None,
    server: Annotated[str | None, typer.Option("--server", help="Server base URL.")] = None,
    model: Annotated[str, typer.Option("--model", help="Which model: text or behaviour.")] = "text",
    as_json: JsonOption = False,
) -> None:
    """Fetch the newest global model from the server's registry and keep it for scoring.

    The weights are checked against their SHA-256, evaluated on this edge's own held-out
    subjects (the scoring quality gate) and kept with their version; nothing is downloaded
    when the edge already holds the newest version.
    """
    from .model_fetch import FETCHABLE_MODELS, fetch_latest_model

    if model not in FETCHABLE_MODELS:
        raise typer.BadParameter(f"use one of {', '.join(FETCHABLE_MODELS)}", param_hint="--model")
    settings = _settings(edge_dir=edge_dir, server_url=server)
    with _open_edge(settings) as store:
        report = fetch_latest_model(
            store=store, settings=settings, model=model, now=datetime.now(UTC)
        )
    if as_json:
        _echo_json(report.to_dict())
    else:
        _echo_table("model fetch", report.to_dict())


@edge_app.command("outcomes")
def outcomes_command(
    path: Annotated[Path, typer.Argument(help="Contact outcomes, JSONL or CSV, one per line.")],
    edge_dir: EdgeDirOption = None,
    server: Annotated[str | None, typer.Option("--server", help="Server base URL.")] = None,
    min_cell: Annotated[
        int, typer.Option("--min-cell", min=2, help="Fewest contacts a sent total may describe.")
    ] = 10,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only summarise; send nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Report contact outcomes per experiment arm and day as totals (never per person).

    Lines name the experiment and arm (from the decision's answer), the time, first-response
    seconds, resolved, transferred and optionally order value and 30-day retention. Cells with
    fewer than --min-cell contacts are held back; a re-sent day replaces its earlier totals.
    """
    from .decisions.outcomes import read_outcomes, summarize, upload_outcomes

    summary = summarize(read_outcomes(path), min_cell=min_cell)
    report = summary.to_dict()
    if not dry_run and summary.totals:
        settings = _settings(edge_dir=edge_dir, server_url=server)
        report["stored"] = upload_outcomes(summary, settings=settings)
    if as_json:
        _echo_json(report)
    else:
        _echo_table("outcomes", {k: v for k, v in report.items() if k != "rejected"})
        for item in summary.rejected[:20]:
            typer.echo(f"  line {item[0]}: {item[1]}", err=True)
    if summary.rejected:
        raise typer.Exit(code=3)


@edge_app.command("sync")
def sync_command(
    edge_dir: EdgeDirOption = None,
    server: Annotated[str | None, typer.Option("--server", help="Server base URL.")] = None,
    enrollment_token: Annotated[
        str | None,
        typer.Option(
            "--enrollment-token",
            help="Token for the first sync (or FEDPROFILE_ENROLLMENT_TOKEN).",
            envvar="FEDPROFILE_ENROLLMENT_TOKEN",
            show_envvar=False,
        ),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Send a complete snapshot that replaces this edge's contributions on the "
            "server (repairs a server that lost state).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Apply the server's subject events, then send consents, allowed fields and ledgers."""
    settings = _settings(edge_dir=edge_dir, server_url=server, enrollment_token=enrollment_token)
    with (
        _open_edge(settings) as store,
        _progress("uploading", total=1, enabled=not as_json) as bar,
        EdgeUploader(store=store, settings=settings, progress=_advance(bar, base=0)) as uploader,
    ):
        registered_now = False
        if not uploader.registered:
            token = settings.enrollment_token
            if token is None:
                raise EdgeConfigError(
                    "this edge is not registered yet; pass --enrollment-token or set "
                    "FEDPROFILE_ENROLLMENT_TOKEN"
                )
            uploader.register(
                store.get_meta("edge_name") or "",
                store.get_meta("edge_channel") or "",
                token.get_secret_value(),
            )
            registered_now = True
        # Erasures, restrictions and consents from elsewhere apply before anything leaves.
        feed = sync_subject_events(store=store, settings=settings)
        report = uploader.sync(now=utc_now(), full=full)
        report.notes.extend(feed.notes)
    data = {
        **report.to_dict(),
        "registered_now": registered_now,
        "edge_id": uploader.edge_id,
        "subject_events": feed.to_dict(),
    }
    if as_json:
        _echo_json(data)
    else:
        data.pop("notes")
        _echo_table("sync report", data)
        for note in report.notes:
            typer.echo(f"  note: {note}")
    if report.credentials_rejected:
        raise UploadRefusedError(
            f"the server rejected this edge's credentials; delete {settings.credentials_path} "
            "and sync again with an enrollment token to re-register",
            status=401,
        )
    if not report.server_reachable:
        raise ServerUnavailableError(settings.server_url, pending=report.pending)


@edge_app.command("status")
def status_command(edge_dir: EdgeDirOption = None, as_json: JsonOption = False) -> None:
    """Show what this edge holds and what is queued (counts only)."""
    settings = _settings(edge_dir=edge_dir)
    with _open_edge(settings) as store:
        credential = load_credentials(settings.credentials_path)
        data: dict[str, Any] = {
            "edge_dir": str(settings.edge_dir),
            "name": store.get_meta("edge_name"),
            "channel": store.get_meta("edge_channel"),
            "registered": credential is not None,
            "edge_id": None if credential is None else credential.edge_id,
            "subjects": store.count("subjects"),
            "events": store.count("events"),
            "messages": store.count("messages"),
            "consents": store.count("consents"),
            "consents_unsynced": len(store.consent_events(unsynced_only=True)),
            "profile_fields": store.count("profiles"),
            "outbox": store.outbox_counts(),
            "entities_masked": store.entity_totals(),
            "quarantined_lines": _count_lines(settings.quarantine_path),
            "ledger_models": store.ledger_models(),
        }
    if as_json:
        _echo_json(data)
    else:
        _echo_table("edge status", data)


@edge_app.command("rekey")
def rekey_command(
    new_key: Annotated[
        Path | None,
        typer.Option(
            "--new-key",
            help="Rotated tenant key chain file (this edge's chain plus a new generation).",
        ),
    ] = None,
    generate: Annotated[
        bool,
        typer.Option(
            "--generate",
            help="Generate the next key generation here (an edge with its own tenant key).",
        ),
    ] = False,
    edge_dir: EdgeDirOption = None,
    server: Annotated[str | None, typer.Option("--server", help="Server base URL.")] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1000, help="Pseudonym pairs per upload.")
    ] = DEFAULT_BATCH_SIZE,
    as_json: JsonOption = False,
) -> None:
    """Rotate the tenant key: re-key the store and the server's rows (re-run to resume).

    Maps every stored pseudonym to the new key generation, uploads the old->new pairs in
    batches (never a key or an identifier), and switches the edge to the new key only after
    the server confirmed every batch. Interrupted runs resume where they stopped.
    """
    if new_key is not None and generate:
        raise typer.BadParameter("pass either --new-key or --generate, not both")
    settings = _settings(edge_dir=edge_dir, server_url=server)
    transport = rekey_transport(settings)
    try:
        with (
            _open_edge(settings) as store,
            _progress("re-keying", total=1, enabled=not as_json) as bar,
        ):
            report = rekey_edge(
                store=store,
                settings=settings,
                transport=transport,
                new_key=new_key,
                generate=generate,
                batch_size=batch_size,
                progress=_advance(bar, base=0),
            )
    finally:
        if transport is not None:
            transport.close()
    data = report.to_dict()
    if as_json:
        _echo_json(data)
    else:
        _echo_table("tenant key rotated", data)
