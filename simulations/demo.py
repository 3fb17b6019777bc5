"""``fedprofile demo``: the whole privacy-first pipeline on embedded defaults.

Numbered steps (``run_demo``):

1. generate a synthetic multi-channel population (Chinese messages with phone numbers, ID
   numbers and names) as the five channel systems would hand it over;
2. start the server (``fedprofile serve``, uvicorn on 127.0.0.1, SQLite) as a child process;
3. initialise one edge per channel with a shared tenant key, and ingest each channel's file:
   validation, pseudonymisation and PII masking happen on the edge;
4. train the behaviour model with DP-SGD across the edges on the Flower Simulation Engine,
   each edge at ε <= ``DEMO_EPSILON`` for the run (σ calibrated per edge), with a fixed time
   split (features before the cutoff, purchases in the 30 days after it); each edge's ε
   composes in its ledger; every edge's held-out AUC is set beside the oracle (latent rates)
   and the best non-private baseline (``simulations.demo_quality``);
5. compute each edge's profiles (features, explainable tags, model scores) and upload them
   over HTTP: only catalogued fields that consent allows for each purpose leave an edge;
6. summarise: per-round metrics, ε per edge, fields uploaded / withheld / refused, PII masked.

Then it keeps serving until Ctrl-C, unless ``--no-serve``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from client import (
    ClientSettings,
    EdgeStore,
    EdgeUploader,
    build_profiles,
    ingest_file,
    ledger_report,
    model_quality,
    score_subjects,
)
from client.edge import init_edge, open_tenant_key
from client.text_profile import TEXT_MODEL, TextScoringReport, TextSignals, text_signals_for
from consent import Purpose
from models import API_PREFIX, Channel, RunConfig
from privacy import PIIConfig, PIIDetector, Pseudonymizer, create_key_file, load_key_file

from .demo_decisions import demo_policy, run_decision_stage
from .errors import DemoError
from .federation import federate
from .progress import step_progress
from .server_process import ServerProcess
from .synthetic import CHANNELS, PopulationConfig, write_population

logger = logging.getLogger(__name__)

MARKER = ".fedprofile-demo"
MODEL = "behaviour"
#: The demo's label window: will the customer buy in the next 30 days? (A 14-day window left
#: the desk and SMS edges a few dozen buyers each: held-out AUC moved by 0.08 between runs.)
LABEL_WINDOW_DAYS = 30.0


@dataclass(frozen=True)
class DemoConfig:
    """How big a demo to run and where.

    Parameters
    ----------
    workdir : Path
        Directory for inputs, edges, the server database and logs (recreated each run).
    users : int
        Synthetic users (at least 1,000).
    days : int
        Days of behaviour per user.
    rounds : int
        Federated rounds.
    epsilon : float
        Each edge's target ε for the whole run (σ calibrated to it), at δ = 1e-5.
    seed : int
        Seed of the population and of training's data order.
    port : int
        Server port on 127.0.0.1 (0 picks a free one).
    """

    workdir: Path
    users: int = 3000
    days: int = 90
    rounds: int = 5
    seed: int = 0
    port: int = 0
    epsilon: float = 8.0

    def text_run_config(self, *, database_url: str = "") -> RunConfig:
        """Return the text model's run config: agents' labelled messages on each edge.

        The private text settings of ``fedprofile simulate --task text`` and ``fedprofile
        train`` (a linear model over the 8,000 most frequent public n-grams, plain SGD;
        ``docs/learning.md``), at the same per-run ε as the behaviour model, accounted in
        each edge's ``text`` ledger.
        """
        from .train import training_run_config

        return training_run_config(
            task="text",
            rounds=self.rounds,
            epsilon=self.epsilon,
            max_epsilon=0.0,
            seed=self.seed,
            database_url=database_url,
        )

    def run_config(self, *, cutoff: datetime, database_url: str = "") -> RunConfig:
        """Return the federation's run config (typed; see ``docs/learning.md``)."""
        return RunConfig(
            num_server_rounds=self.rounds,
            target_epsilon=self.epsilon,
            accountant="rdp",
            cutoff=cutoff,
            label_window_days=LABEL_WINDOW_DAYS,
            seed=self.seed,
            database_url=database_url,
        )


@dataclass
class DemoSummary:
    """What the demo did, for people (``render``) and programs (``to_dict``)."""

    workdir: str
    server_url: str
    population: dict[str, Any] = field(default_factory=dict)
    ingest: dict[str, dict[str, Any]] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    text_rounds: list[dict[str, Any]] = field(default_factory=list)
    epsilon: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: dict[str, dict[str, Any]] = field(default_factory=dict)
    server_ledgers: int = 0
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    pii_masked: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)

    def totals(self) -> dict[str, Any]:
        """Fields uploaded, withheld by consent on the edge, and refused by the server."""
        withheld: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        uploaded = 0
        for report in self.uploads.values():
            uploaded += int(report.get("fields_uploaded", 0))
            withheld.update(report.get("fields_withheld", {}))
            refused.update(report.get("refused_by_server", {}))
        return {
            "fields_uploaded": uploaded,
            "fields_withheld_by_consent": dict(withheld),
            "fields_refused_by_server": dict(refused),
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-ready data."""
        return {
            "workdir": self.workdir,
            "server_url": self.server_url,
            "population": self.population,
            "ingest": self.ingest,
            "rounds": self.rounds,
            "text_rounds": self.text_rounds,
            "epsilon": self.epsilon,
            "text": self.text,
            "server_ledgers": self.server_ledgers,
            "models": self.models,
            "uploads": self.uploads,
            "totals": self.totals(),
            "pii_masked": self.pii_masked,
            "timings": self.timings,
            "identity": self.identity,
            "decisions": self.decisions,
        }


def prepare_workdir(workdir: Path) -> None:
    """Create ``workdir``, or clear a previous demo there; refuse a foreign non-empty dir.

    Raises
    ------
    DemoError
        If ``workdir`` holds files that a previous demo did not create.
    """
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / MARKER).exists():
            raise DemoError(
                f"{workdir} is not empty and was not created by `fedprofile demo`; "
                "choose another --workdir"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("created by fedprofile demo; safe to delete\n")


def _ingest_edges(cfg: DemoConfig, console: Console, summary: DemoSummary, key: Path) -> None:
    """Step 3: one edge per channel, shared tenant key, validate + pseudonymise + mask."""
    detector = PIIDetector.create(PIIConfig())
    masked: Counter[str] = Counter()
    for channel in CHANNELS:
        edge_dir = cfg.workdir / "edges" / channel
        init_edge(
            edge_dir=edge_dir, name=f"{channel}-edge", channel=Channel(channel), tenant_key=key
        )
        path = cfg.workdir / "input" / f"{channel}.jsonl"
        with (
            EdgeStore.for_edge_dir(edge_dir) as store,
            step_progress(console, f"ingest {channel:<6}", total=path.stat().st_size) as advance,
        ):
            report = ingest_file(
                store=store,
                path=path,
                pseudonymizer=Pseudonymizer(open_tenant_key(store)),
                detector=detector,
                progress=advance,
            )
        summary.ingest[channel] = {
            "accepted": report.total_accepted,
            "rejected": report.total_rejected,
            "duplicates": report.total_duplicates,
            "entities_masked": report.entities_masked,
        }
        masked.update(report.entities_masked)
    summary.pii_masked = dict(sorted(masked.items()))


def _profiles_and_uploads(
    cfg: DemoConfig, summary: DemoSummary, server: ServerProcess, now: datetime
) -> None:
    """Step 5: features, tags, model scores; consent-scoped upload over HTTP."""
    for channel in CHANNELS:
        edge_dir = cfg.workdir / "edges" / channel
        settings = ClientSettings(edge_dir=edge_dir, server_url=server.url)
        with EdgeStore.for_edge_dir(edge_dir) as store:
            scores = score_subjects(store, now=now, model=MODEL)
            text, scoring = text_signals_for(store, now=now)
            build_profiles(store=store, now=now, scores=scores, text=text)
            summary.text[channel] = _text_summary(store, text, scoring, now=now)
            quality = model_quality(store, MODEL)
            aucs = {} if quality is None else quality.head_aucs
            summary.models.setdefault(channel, {}).update(
                {
                    "round": None if quality is None else quality.server_round,
                    "purchase_auc": _rounded(aucs.get("purchase")),
                    "escalation_auc": _rounded(aucs.get("escalation")),
                    "held_out": 0 if quality is None else quality.num_examples,
                    "scores_published": sorted({n for v in scores.values() for n in v}),
                }
            )
            with EdgeUploader(store=store, settings=settings) as uploader:
                if not uploader.registered:
                    uploader.register(f"{channel}-edge", Channel(channel), server.enrollment_token)
                report = uploader.sync(now=datetime.now(UTC))
            summary.uploads[channel] = report.to_dict()
            ledger = ledger_report(store, MODEL)
            if ledger is not None:
                summary.epsilon[channel] = {
                    "epsilon": round(ledger.epsilon, 4),
                    "delta": ledger.delta,
                    "accountant": ledger.accountant,
                    "releases": len(ledger.entries),
                    "budget": ledger.budget,
                    "exhausted": ledger.exhausted,
                }


def _text_summary(
    store: EdgeStore, text: dict[str, TextSignals], scoring: TextScoringReport, *, now: datetime
) -> dict[str, Any]:
    """One edge's text model and text fields: quality, version, consent for the fields.

    A subject's ``text.*`` fields leave the edge only for a purpose they consented to
    (``service_routing``, ``personalized_service`` or ``proactive_service``; the catalogue
    says which field serves which): ``allowed`` counts subjects whose edge-side record grants
    at least one of them now, ``withheld`` the others.
    """
    quality = model_quality(store, TEXT_MODEL)
    purposes = (Purpose.SERVICE_ROUTING, Purpose.PERSONALIZED_SERVICE, Purpose.PROACTIVE_SERVICE)
    states = store.consent_states()
    allowed = sum(
        1
        for subject in text
        if subject in states and any(states[subject].is_granted(p, now) for p in purposes)
    )
    ledger = ledger_report(store, TEXT_MODEL)
    aucs = {} if quality is None else quality.head_aucs
    return {
        "model_version": scoring.model_version,
        "heads_published": list(scoring.published_heads),
        "messages_scored": scoring.scored,
        "held_out_messages": 0 if quality is None else quality.num_examples,
        **{f"{head}_auc": _rounded(aucs.get(head)) for head in ("intent", "emotion", "urgency")},
        "subjects_with_text_fields": len(text),
        "allowed_by_consent": allowed,
        "withheld_by_consent": len(text) - allowed,
        "epsilon": None if ledger is None else round(ledger.epsilon, 4),
    }


def _references(
    cfg: DemoConfig,
    summary: DemoSummary,
    population: PopulationConfig,
    config: RunConfig,
    key: Path,
) -> None:
    """Oracle and best non-private baseline AUC of each edge's held-out subjects."""
    from .demo_quality import edge_references

    references = edge_references(
        edge_dirs={c: cfg.workdir / "edges" / c for c in CHANNELS},
        key_path=key,
        population=population,
        config=config,
        at=datetime.now(UTC),
        seed=cfg.seed,
    )
    for channel, ref in references.items():
        summary.models.setdefault(channel, {}).update(
            {
                "oracle_auc": round(ref.oracle_auc, 3),
                "baseline_auc": round(ref.baseline_auc, 3),
                "baseline": ref.baseline,
                "positives": ref.positives,
            }
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _linkage(
    cfg: DemoConfig, summary: DemoSummary, server: ServerProcess, population: PopulationConfig,
    key: Path,
) -> None:  # fmt: skip
    """Score the server's persons against the generator's cross-device truth."""
    from client.identity import IdentityResolver
    from client.schemas import CustomerRef

    from .linkage_truth import score_linkage, true_clusters

    resolver = IdentityResolver(Pseudonymizer(load_key_file(key)))

    def pseudonym_of(customer: dict[str, str]) -> str | None:
        return resolver.resolve(CustomerRef.model_validate(customer)).subject

    held: set[str] = set()
    for channel in CHANNELS:
        with EdgeStore.for_edge_dir(cfg.workdir / "edges" / channel) as store:
            held.update(store.synced_identity_subjects())
    persons: dict[str, list[str]] = {}
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url + API_PREFIX, headers=headers, timeout=60.0) as http:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000, **({"after": after} if after else {})}
            page = http.get("/identity/persons", params=params).raise_for_status().json()
            persons.update({p["person"]: p["members"] for p in page})
            if len(page) < 1000:
                break
            after = page[-1]["person"]
        hubs = http.get("/identity/hubs").raise_for_status().json()
    score = score_linkage(persons, true_clusters(population, pseudonym_of), held)
    summary.identity = {**score.to_dict(), "pseudonyms_held": len(held), "hubs": len(hubs)}


def _server_view(summary: DemoSummary, server: ServerProcess) -> None:
    """Read training rounds and ledgers back from the server's API."""
    headers = {"Authorization": f"Bearer {server.agent_token}"}
    with httpx.Client(base_url=server.url + API_PREFIX, headers=headers, timeout=30.0) as http:
        runs = http.get("/training-runs").raise_for_status().json()
        ledgers = http.get("/ledgers").raise_for_status().json()
    newest: dict[str, dict[str, Any]] = {}
    for run in runs if isinstance(runs, list) else []:  # newest first
        newest.setdefault(str(run.get("model")), run)
    summary.rounds = list(newest.get(MODEL, {}).get("rounds", []))
    summary.text_rounds = list(newest.get(TEXT_MODEL, {}).get("rounds", []))
    summary.server_ledgers = len(ledgers) if isinstance(ledgers, list) else 0


def run_demo(
    cfg: DemoConfig, *, console: Console, keep_server: bool = False
) -> tuple[DemoSummary, ServerProcess | None]:
    """Run the pipeline; return its summary and, if ``keep_server``, the running server.

    Parameters
    ----------
    cfg : DemoConfig
        Size and place of the demo.
    console : Console
        Where progress goes.
    keep_server : bool
        Leave the server running (the caller stops it).

    Returns
    -------
    tuple[DemoSummary, ServerProcess or None]
        The summary and the still-running server (``None`` unless ``keep_server``).
    """
    clock = time.perf_counter()
    marks: dict[str, float] = {}
    prepare_workdir(cfg.workdir)
    # 1. Population, as the channel systems would hand it over.
    population = PopulationConfig(users=cfg.users, days=cfg.days, seed=cfg.seed)
    generated = write_population(population, cfg.workdir / "input")
    marks["population"] = time.perf_counter()
    console.print(
        f"[bold]1/7[/] population: {generated.users} users, {generated.events} events, "
        f"{generated.messages} messages, {generated.consents} consent records"
    )
    # 2. The server, as its own process on 127.0.0.1.
    db_url = f"sqlite:///{(cfg.workdir / 'server.sqlite').resolve()}"
    policy = demo_policy(cfg.workdir)  # the shipped policy, routing experiment switched on
    server = ServerProcess(
        database_url=db_url, port=cfg.port, log_path=cfg.workdir / "logs" / "server.log",
        extra_env={"FEDPROFILE_DECISION_POLICY_PATH": str(policy)},
    ).start()
    summary = DemoSummary(
        workdir=str(cfg.workdir),
        server_url=server.url,
        population={
            "users": generated.users,
            "events": generated.events,
            "messages": generated.messages,
            "consents": generated.consents,
            "days": cfg.days,
            "seed": cfg.seed,
        },
    )
    try:
        marks["server"] = time.perf_counter()
        console.print(f"[bold]2/7[/] server: {server.url} (pid {server.pid}, SQLite)")
        # 3. Edges: shared tenant key (held by edges only), ingestion with masking.
        key = cfg.workdir / "keys" / "tenant.key"
        create_key_file(key)
        console.print("[bold]3/7[/] edges: pseudonymise identifiers and mask PII on each edge")
        _ingest_edges(cfg, console, summary, key)
        marks["ingest"] = time.perf_counter()
        # 4. Federated DP training on the Flower Simulation Engine.
        console.print(
            f"[bold]4/7[/] federated DP-SGD: {len(CHANNELS)} edges x {cfg.rounds} rounds "
            "(Flower + Ray)"
        )
        cutoff = population.end - timedelta(days=LABEL_WINDOW_DAYS)
        run_config = cfg.run_config(cutoff=cutoff, database_url=db_url)
        federate(cfg.workdir / "edges", run_config)
        console.print(
            f"[bold]4/7[/] federated DP-SGD, text model: intent / emotion / urgency from "
            f"agents' labelled messages, {cfg.rounds} rounds"
        )
        federate(cfg.workdir / "edges", cfg.text_run_config(database_url=db_url))
        marks["federation"] = time.perf_counter()
        _references(cfg, summary, population, run_config, key)
        # 5. Profiles and consent-scoped uploads over HTTP.
        console.print(
            "[bold]5/7[/] profiles: explainable tags, model scores and text signals, "
            "consent-scoped upload"
        )
        _profiles_and_uploads(cfg, summary, server, population.end)
        marks["upload"] = time.perf_counter()
        _linkage(cfg, summary, server, population, key)
        marks["linkage"] = time.perf_counter()
        # 6. What the server now holds.
        _server_view(summary, server)
        # 7. Decisions: route desk contacts, serve them, KPIs per experiment arm.
        console.print(
            "[bold]7/7[/] decisions: desk contacts routed through the API, outcomes per arm"
        )
        summary.decisions = run_decision_stage(
            cfg.workdir, server, db_url=db_url, now=population.end, seed=cfg.seed
        )
        marks["decisions"] = time.perf_counter()
    except BaseException:
        server.stop()
        raise
    previous = clock
    for name, mark in marks.items():
        summary.timings[name] = round(mark - previous, 2)
        previous = mark
    summary.timings["total"] = round(time.perf_counter() - clock, 2)
    if keep_server:
        return summary, server
    server.stop()
    return summary, None
