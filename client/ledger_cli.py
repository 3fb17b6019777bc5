"""``fedprofile privacy ledger``: the cumulative (ε, δ) of every model on one or more edges."""

from __future__ import annotations

import json as json_module
import logging
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .errors import EdgeNotInitialisedError
from .ledger import read_ledger
from .store import STORE_FILENAME, EdgeStore

logger = logging.getLogger(__name__)


def _edge_rows(edge_dir: Path) -> list[dict[str, Any]]:
    """Return one row per model ledger of the edge in ``edge_dir``."""
    if not (edge_dir / STORE_FILENAME).exists():
        raise EdgeNotInitialisedError(edge_dir)
    rows: list[dict[str, Any]] = []
    with EdgeStore.for_edge_dir(edge_dir) as store:
        edge = store.get_meta("edge_name") or edge_dir.name
        for model in store.ledger_models():
            ledger = read_ledger(store, model)
            if ledger is None:
                continue
            epsilon = ledger.epsilon()
            rows.append(
                {
                    "edge": edge,
                    "edge_dir": str(edge_dir),
                    "model": model,
                    "epsilon": epsilon if math.isfinite(epsilon) else None,
                    "epsilon_infinite": not math.isfinite(epsilon),
                    "delta": ledger.delta,
                    "accountant": ledger.accountant,
                    "releases": len(ledger.releases),
                    "budget": ledger.budget,
                    "exhausted": ledger.exhausted,
                }
            )
    return rows


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Privacy ledgers (cumulative over all rounds and runs)")
    for column in ("edge", "model", "ε", "δ", "accountant", "releases", "budget", "exhausted"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["edge"],
            row["model"],
            "∞" if row["epsilon_infinite"] else f"{row['epsilon']:.3f}",
            f"{row['delta']:g}",
            row["accountant"],
            str(row["releases"]),
            "-" if row["budget"] is None else f"{row['budget']:.3f}",
            "yes" if row["exhausted"] else "no",
        )
    Console().print(table)


def ledger_command(
    edge_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--edge-dir",
            help="Edge directory; repeat for several edges "
            "(default: FEDPROFILE_EDGE_DIR or ./.fedprofile/edge).",
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print a JSON list for programs.")] = False,
) -> None:
    """Show each edge's privacy ledger: cumulative ε at δ per model, budget and releases.

    ε composes every DP training release of the model on that edge, across rounds and runs
    (Poisson sampling, add/remove-one neighbours; user-level on that edge).
    """
    if not edge_dir:
        from .config import get_client_settings

        edge_dir = [get_client_settings().edge_dir]
    rows = [row for directory in edge_dir for row in _edge_rows(Path(directory))]
    if json:
        typer.echo(json_module.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no privacy ledger yet: no model has been trained on these edges")
        return
    _print_table(rows)
