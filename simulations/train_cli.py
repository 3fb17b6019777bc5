"""The ``fedprofile train`` command: federated training over local edges, once or ``--every``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def train_command(
    edges: Annotated[
        Path,
        typer.Option("--edges", help="Directory of edge directories (each with edge.sqlite)."),
    ],
    database_url: Annotated[
        str,
        typer.Option(
            "--database-url",
            envvar="FEDPROFILE_DATABASE_URL",
            help="Server database: runs, rounds and the model registry (warm start).",
        ),
    ],
    task: Annotated[str, typer.Option("--task", help="What to train: text or behaviour.")] = "text",
    rounds: Annotated[int, typer.Option("--rounds", min=1, max=100, help="Rounds per run.")] = 3,
    epsilon: Annotated[
        float, typer.Option("--epsilon", min=0.01, help="Each edge's target ε for one run.")
    ] = 2.0,
    max_epsilon: Annotated[
        float,
        typer.Option(
            "--max-epsilon", min=0.0, help="Each edge's budget across runs (0 = none; not advised)."
        ),
    ] = 8.0,
    every: Annotated[
        str | None,
        typer.Option("--every", help="Run again at this interval (e.g. 6h, 1d) until the budget."),
    ] = None,
    runs: Annotated[
        int | None, typer.Option("--runs", min=1, help="Most runs (default: until the budget).")
    ] = None,
    sync: Annotated[
        bool,
        typer.Option("--sync/--no-sync", help="After each run, sync every registered edge."),
    ] = False,
    server: Annotated[
        str | None, typer.Option("--server", help="Server base URL for --sync.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first run.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Train the text or behaviour model federated with DP, once or on a schedule.

    Every run warm-starts from the registry's newest version, each edge's ledger composes
    across runs, and the schedule stops when a run ends on the privacy budget.
    """
    from .errors import ScheduleError
    from .federation import edge_dirs
    from .schedule import RunOutcome, parse_every, run_every
    from .train import TrainingPlan, one_run, training_run_config

    if task not in ("text", "behaviour"):
        raise typer.BadParameter("use text or behaviour", param_hint="--task")
    if not edges.is_dir() or not edge_dirs(edges):
        raise ScheduleError(f"no edge directories with edge.sqlite under {edges}")
    interval = parse_every(every) if every else None
    config = training_run_config(task=task, rounds=rounds, epsilon=epsilon,
                                 max_epsilon=max_epsilon, seed=seed,
                                 database_url=database_url)  # fmt: skip
    console = Console(stderr=as_json)

    def report(number: int, outcome: RunOutcome) -> None:
        spent = ", ".join(f"{e} ε={v:.3f}" for e, v in sorted(outcome.edge_epsilon.items()))
        console.print(f"run {number + 1}: {outcome.status}, {outcome.rounds} round(s); {spent}")

    plan = TrainingPlan(edges=edges, config=config, sync=sync, server_url=server)
    outcomes = run_every(one_run(plan), every=interval, runs=runs, on_outcome=report)
    if outcomes[-1].status == "budget_exhausted":
        console.print(f"privacy budget reached (max-epsilon {max_epsilon:g}): schedule stopped")
    if as_json:
        typer.echo(json.dumps([o.__dict__ for o in outcomes], indent=2))
