from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from typer.testing import CliRunner

from client.errors import EdgeNotInitialisedError
from client.ledger import load_ledger, save_ledger
from client.ledger_cli import ledger_command
from client.store import EdgeStore
from privacy import DPConfig, Release

runner = CliRunner()
AT = datetime(2026, 11, 1, tzinfo=UTC)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("ledger")(ledger_command)
    app.command("noop")(lambda: None)
    return app


def _edge(path: Path, *, name: str, rounds: int, budget: float | None = None) -> None:
    with EdgeStore.for_edge_dir(path) as store:
        store.set_meta("edge_name", name)
        ledger = load_ledger(
            store, model="behaviour", dp=DPConfig(max_epsilon=budget, accountant="rdp")
        )
        for r in range(rounds):
            ledger.charge(
                Release(
                    model="behaviour",
                    run_id="1",
                    round=r + 1,
                    accountant="rdp",
                    noise_multiplier=1.0,
                    sample_rate=0.25,
                    steps=4,
                    delta=1e-5,
                    recorded_at=AT,
                )
            )
        save_ledger(store, ledger)


def test_ledger_command_json_one_row_per_edge_and_model(tmp_path: Path) -> None:
    _edge(tmp_path / "a", name="web-1", rounds=2, budget=20.0)
    _edge(tmp_path / "b", name="app-1", rounds=1)

    result = runner.invoke(
        _app(),
        ["ledger", "--edge-dir", str(tmp_path / "a"), "--edge-dir", str(tmp_path / "b"), "--json"],
    )

    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["edge"], r["model"], r["releases"]) for r in rows] == [
        ("web-1", "behaviour", 2),
        ("app-1", "behaviour", 1),
    ]
    assert rows[0]["epsilon"] > rows[1]["epsilon"] > 0
    assert (rows[0]["budget"], rows[0]["exhausted"], rows[0]["accountant"]) == (20.0, False, "rdp")


def test_ledger_command_table_has_the_columns(tmp_path: Path) -> None:
    _edge(tmp_path, name="web-1", rounds=1)

    result = runner.invoke(_app(), ["ledger", "--edge-dir", str(tmp_path)], env={"COLUMNS": "160"})

    assert result.exit_code == 0
    for column in ("edge", "model", "ε", "δ", "accountant", "releases", "budget", "exhausted"):
        assert column in result.output
    assert "web-1" in result.output


def test_ledger_command_no_ledgers_says_so(tmp_path: Path) -> None:
    EdgeStore.for_edge_dir(tmp_path).close()

    result = runner.invoke(_app(), ["ledger", "--edge-dir", str(tmp_path)])

    assert result.exit_code == 0 and "no privacy ledger" in result.output


def test_ledger_command_uninitialised_edge_raises_without_creating_a_store(tmp_path: Path) -> None:
    result = runner.invoke(_app(), ["ledger", "--edge-dir", str(tmp_path / "none")])

    assert isinstance(result.exception, EdgeNotInitialisedError)
    assert not (tmp_path / "none").exists()
