"""Commands of the simulations room: ``demo`` and ``simulate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

DEFAULT_WORKDIR = Path(".fedprofile/demo")


def demo_command(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Small run (1,000 users, 30 days, 3 rounds; about a minute)."),
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
            "--users", min=1000, help="Synthetic users (default 1,000 quick / 2,000 full)."
        ),
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option(
            "--rounds", min=1, max=50, help="Federated rounds (default 3 quick / 5 full)."
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
        users=users or (1000 if quick else 2000),
        days=30 if quick else 60,
        rounds=rounds or (3 if quick else 5),
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
        str, typer.Option("--task", help="behaviour (text arrives with the text model).")
    ] = "behaviour",
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset", help="Input JSONL in the edge input schema (default: synthetic)."
        ),
    ] = None,
    edges: Annotated[int, typer.Option("--edges", min=1, max=1000, help="Number of edges.")] = 5,
    rounds: Annotated[int, typer.Option("--rounds", min=1, max=500, help="Federated rounds.")] = 3,
    epsilon: Annotated[
        float | None, typer.Option("--epsilon", min=0.0, help="Per-edge ε budget.")
    ] = None,
    users: Annotated[
        int, typer.Option("--users", min=10, help="Synthetic users when no dataset is given.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Output directory for metrics.json.")] = Path(
        "simulation-out"
    ),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print metrics as JSON on stdout.")
    ] = False,
) -> None:
    """Run a federated simulation and write metrics.json (behaviour task)."""
    from .simulate import SimulationConfig, run_simulation_task

    console = Console(stderr=True)
    cfg = SimulationConfig(
        task=task,
        dataset=dataset,
        edges=edges,
        rounds=rounds,
        epsilon=epsilon,
        users=users,
        seed=seed,
        out=out.resolve(),
    )
    metrics = run_simulation_task(cfg, console=console)
    if as_json:
        typer.echo(json.dumps(metrics, ensure_ascii=False, indent=2))
    else:
        console.print(f"metrics written to {cfg.out / 'metrics.json'}")
