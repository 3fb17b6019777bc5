"""Commands of the simulations room: ``demo`` and ``simulate``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

DEFAULT_WORKDIR = Path(".fedprofile/demo")


def demo_command(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Small run (3,000 users, 90 days, 5 rounds; about ten minutes on 2 cores).",
        ),
    ] = False,
    workdir: Annotated[
        Path,
        typer.Option(
            "--workdir", help="Directory for inputs, edges, server DB and logs (recreated)."
        ),
    ] = DEFAULT_WORKDIR,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve", help="Keep serving the API after the summary (Ctrl-C stops)."
        ),
    ] = True,
    users: Annotated[
        int | None,
        typer.Option(
            "--users", min=1000, help="Synthetic users (default 3,000 quick / 4,000 full)."
        ),
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option(
            "--rounds", min=1, max=50, help="Federated rounds (default 5 quick / 10 full)."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the synthetic population and data order.")
    ] = 0,
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="Server port on 127.0.0.1 (0 = a free one)."),
    ] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
) -> None:
    """Run the whole privacy-first pipeline on embedded defaults (synthetic data, SQLite)."""
    from .demo import DemoConfig, run_demo
    from .demo_report import render_demo_summary

    console = Console(stderr=as_json)
    cfg = DemoConfig(
        workdir=workdir.resolve(),
        users=users or (3000 if quick else 4000),
        days=90 if quick else 120,
        rounds=rounds or (5 if quick else 10),
        seed=seed,
        port=port,
    )
    summary, server = run_demo(cfg, console=console, keep_server=serve)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        render_demo_summary(summary, console)
    if server is None:
        return
    console.print(
        f"\n[bold green]Serving[/] {server.url}/docs  (agent token: {server.agent_token})"
    )
    console.print(
        f"  try: curl -H 'Authorization: Bearer {server.agent_token}' "
        f"'{server.url}/api/v1/training-runs'"
    )
    console.print("  Ctrl-C stops the server.")
    try:
        server.wait()
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        server.stop()


def simulate_command(
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="behaviour (event logs), text (labelled messages) or decisions (routing "
            "policies fifo / rules / rules+models on a simulated contact centre; uses --users, "
            "--seed, --out, --json).",
        ),
    ] = "behaviour",
    dataset: Annotated[
        list[Path] | None,
        typer.Option(
            "--dataset",
            help="Input file, repeatable. text: labelled JSONL/CSV; behaviour: event logs "
            "(JSONL/CSV in the edge input schema; default: a synthetic population).",
        ),
    ] = None,
    text_field: Annotated[str, typer.Option("--text-field", help="Text field (text task).")] = (
        "text"
    ),
    label_field: Annotated[
        str, typer.Option("--label-field", help="Label field, any number of classes.")
    ] = "label",
    group_field: Annotated[
        str | None,
        typer.Option("--group-field", help="User / customer field: its examples stay together."),
    ] = None,
    partition: Annotated[
        str, typer.Option("--partition", help="iid | dirichlet (label skew) | column (text).")
    ] = "iid",
    partition_field: Annotated[
        str | None, typer.Option("--partition-field", help="Column of --partition column.")
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0.001, help="Dirichlet α of --partition dirichlet.")
    ] = 0.5,
    edges: Annotated[int, typer.Option("--edges", min=1, max=1000, help="Number of edges.")] = 5,
    rounds: Annotated[int, typer.Option("--rounds", min=1, max=500, help="Federated rounds.")] = 5,
    local_epochs: Annotated[
        int | None, typer.Option("--local-epochs", min=1, help="Epochs per round per edge.")
    ] = None,
    epsilon: Annotated[
        list[float] | None,
        typer.Option(
            "--epsilon",
            min=0.0,
            help="Target ε per edge for the whole run (repeatable; default 8). Noise is "
            "calibrated from the round plan.",
        ),
    ] = None,
    noise_multiplier: Annotated[
        float | None, typer.Option("--noise-multiplier", min=0.0, help="Fixed σ instead of ε.")
    ] = None,
    no_dp: Annotated[
        bool, typer.Option("--no-dp", help="Federated training without noise.")
    ] = False,
    central_dp: Annotated[
        bool, typer.Option("--central-dp", help="Client-level DP on the server, not DP-SGD.")
    ] = False,
    engine: Annotated[
        str, typer.Option("--engine", help="inprocess (no Ray; deterministic) or ray.")
    ] = "inprocess",
    baselines: Annotated[
        bool,
        typer.Option(
            "--baselines",
            help="Add centralized (non-private, DP), federated non-private, local-only and "
            "simple models (TF-IDF + LR; logistic regression, boosting, BG/NBD).",
        ),
    ] = False,
    accountant: Annotated[
        str, typer.Option("--accountant", help="rdp (fast, conservative) or prv (tighter).")
    ] = "rdp",
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1)] = None,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", min=0.0)] = None,
    no_mask: Annotated[
        bool, typer.Option("--no-mask", help="The text file is already PII-masked.")
    ] = False,
    lang: Annotated[str, typer.Option("--lang", help="zh or en (masking).")] = "zh",
    users: Annotated[
        int, typer.Option("--users", min=10, help="Synthetic users when no dataset is given.")
    ] = 1000,
    max_epsilon: Annotated[
        float,
        typer.Option(
            "--max-epsilon",
            min=0.0,
            help="Budget on each edge's cumulative ε (0 = none): edges refuse a round that "
            "would exceed it and the run stops, as deployed edges do.",
        ),
    ] = 0.0,
    cutoff: Annotated[
        str | None,
        typer.Option(
            "--cutoff",
            help="Behaviour: ISO 8601 time with a timezone; features from events up to it, "
            "labels from the window after it (default: last event minus the window).",
        ),
    ] = None,
    label_window_days: Annotated[
        float,
        typer.Option("--label-window-days", min=0.001, help="Behaviour: label window in days."),
    ] = 14.0,
    malicious_edges: Annotated[
        int,
        typer.Option(
            "--malicious-edges",
            min=0,
            help="Edges that play --attack; each federated setting also runs attacked, "
            "under --aggregation and under plain FedAvg (0 = none).",
        ),
    ] = 0,
    attack: Annotated[
        str,
        typer.Option(
            "--attack", help="count-inflation | scale | sign-flip | label-flip (malicious edges)."
        ),
    ] = "sign-flip",
    broken_edges: Annotated[
        int,
        typer.Option(
            "--broken-edges",
            min=0,
            help="Edges whose export breaks (--fault) from round 2 and is repaired in the "
            "last round; each federated setting also runs with them, with and without the "
            "server's data-quality policy (0 = none).",
        ),
    ] = 0,
    fault: Annotated[
        str,
        typer.Option(
            "--fault", help="schema-break | empty-export | drifted-population (broken edges)."
        ),
    ] = "schema-break",
    secure_aggregation: Annotated[
        bool,
        typer.Option(
            "--secure-aggregation",
            help="Aggregate with SecAgg+: the server sees only the weighted sum of the "
            "updates (needs 3 or more edges).",
        ),
    ] = False,
    aggregation: Annotated[
        str | None,
        typer.Option(
            "--aggregation",
            help="robust (default: trimmed mean; central DP: clipped mean) | fedavg | "
            "trimmed-mean | median | krum | multikrum | bulyan.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of everything.")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Output directory for the report.")] = Path(
        "simulation-out"
    ),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print metrics as JSON on stdout.")
    ] = False,
) -> None:
    """Compare federated DP with baselines on your data; write metrics, plots and a report."""
    from typing import get_args

    from models.run_config import Aggregation

    from .attacks import ATTACKS
    from .errors import SimulationError
    from .faults import FAULTS
    from .simulate import SimulationConfig, run_simulation_task
    from .task_data import TextSource

    AGGREGATIONS = get_args(Aggregation)

    console = Console(stderr=True)
    choices: dict[str, tuple[str, tuple[str, ...]]] = {
        "--task": (task, ("behaviour", "text", "decisions")),
        "--partition": (partition, ("iid", "dirichlet", "column")),
        "--engine": (engine, ("inprocess", "ray")),
        "--accountant": (accountant, ("rdp", "prv")),
        "--lang": (lang, ("zh", "en")),
        "--attack": (attack, ATTACKS),
        "--fault": (fault, FAULTS),
    }
    if aggregation is not None:
        choices["--aggregation"] = (aggregation, AGGREGATIONS)
    for option, (value, allowed) in choices.items():
        if value not in allowed:
            raise typer.BadParameter(f"{option} must be one of {', '.join(allowed)}")
    if task == "decisions":
        _simulate_decisions(
            dataset=dataset, users=users, seed=seed, out=out, as_json=as_json, console=console
        )
        return
    paths = tuple(p.resolve() for p in dataset or [])
    when = None
    if cutoff is not None:
        try:
            when = datetime.fromisoformat(cutoff.replace("Z", "+00:00"))
        except ValueError as exc:
            raise typer.BadParameter("--cutoff must be an ISO 8601 time") from exc
        if when.tzinfo is None:
            raise typer.BadParameter("--cutoff needs a timezone, e.g. 2026-10-01T00:00:00+08:00")
    text = None
    if task == "text":
        text = TextSource(
            paths=paths,
            text_field=text_field,
            label_field=label_field,
            group_field=group_field,
            partition_field=partition_field,
            mask=not no_mask,
            lang=lang,  # type: ignore[arg-type]
        )
    cfg = SimulationConfig(
        task=task,  # type: ignore[arg-type]
        datasets=paths,
        edges=edges,
        rounds=rounds,
        out=out.resolve(),
        local_epochs=local_epochs,
        epsilons=tuple(epsilon or ([] if noise_multiplier is not None else [8.0])),
        noise_multiplier=noise_multiplier,
        dp=not no_dp,
        central_dp=central_dp,
        engine=engine,  # type: ignore[arg-type]
        baselines=baselines,
        seed=seed,
        text=text,
        partition=partition,  # type: ignore[arg-type]
        alpha=alpha,
        users=users,
        batch_size=batch_size,
        learning_rate=learning_rate,
        accountant=accountant,  # type: ignore[arg-type]
        max_epsilon=max_epsilon,
        cutoff=when,
        label_window_days=label_window_days,
        malicious_edges=malicious_edges,
        attack=attack,
        aggregation=aggregation,
        broken_edges=broken_edges,
        fault=fault,
        secure_aggregation=secure_aggregation,
    )
    try:
        metrics = run_simulation_task(cfg, console=console)
    except SimulationError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(json.dumps(metrics, ensure_ascii=False, indent=2))
    else:
        console.print(f"report written to {cfg.out / 'report.html'}")


def _simulate_decisions(
    *,
    dataset: list[Path] | None,
    users: int,
    seed: int,
    out: Path,
    as_json: bool,
    console: Console,
) -> None:
    """Run ``simulate --task decisions``; a bad option exits 2 with a one-line reason."""
    from .decisions import DecisionSimulationConfig, run_decision_simulation
    from .errors import SimulationError

    if dataset:
        raise typer.BadParameter(
            "the decisions task simulates its own population and contacts; drop --dataset"
        )
    cfg = DecisionSimulationConfig(out=out.resolve(), users=users, seed=seed)
    try:
        metrics = run_decision_simulation(cfg, console=console)
    except SimulationError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(json.dumps(metrics, ensure_ascii=False, indent=2))
    else:
        console.print(f"report written to {cfg.out / 'report.md'}")
