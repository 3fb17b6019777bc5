"""``fedprofile simulate``: small in-process runs through the real ServerApp / strategy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from simulations.errors import SimulationError
from simulations.labeled import generate_labeled_messages
from simulations.simulate import SimulationConfig, run_simulation_task
from simulations.task_data import TextSource


@pytest.fixture(scope="module")
def messages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "messages.jsonl"
    return generate_labeled_messages(path, lines=400, users=40, seed=1)


def _config(messages: Path, out: Path, **kwargs: object) -> SimulationConfig:
    options: dict[str, object] = {
        "task": "text",
        "datasets": (messages,),
        "edges": 3,
        "rounds": 2,
        "out": out,
        "epsilons": (8.0,),
        "text": TextSource(paths=(messages,), mask=False, group_field=None),
        "batch_size": 32,
        "learning_rate": 5.0,
        "seed": 0,
    }
    options.update(kwargs)
    return SimulationConfig(**options)  # type: ignore[arg-type]


def test_text_run_with_baselines_writes_the_report(messages: Path, tmp_path: Path) -> None:
    metrics = run_simulation_task(
        _config(messages, tmp_path, baselines=True), console=Console(quiet=True)
    )
    names = [s["setting"] for s in metrics["settings"]]
    assert names == ["central", "central-dp", "local-only", "federated", "federated-dp"]
    for name in (
        "metrics.json",
        "timings.json",
        "report.md",
        "report.html",
        "rounds.png",
        "utility_vs_epsilon.png",
    ):
        assert (tmp_path / name).is_file(), name
    written = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    fed_dp = written["settings"][-1]
    # Every edge's ε stays within the target it was calibrated to, and one curve point per round.
    assert len(fed_dp["epsilon_per_edge"]) == 3
    assert all(0.0 < e <= 8.0 for e in fed_dp["epsilon_per_edge"].values())
    assert [c["round"] for c in fed_dp["curve"]] == [0.0, 1.0, 2.0]
    assert written["settings"][3]["epsilon_per_edge"] == {
        "edge-0000": None,
        "edge-0001": None,
        "edge-0002": None,
    }
    central = written["settings"][0]["metrics"]
    gap = written["gaps_vs_central"]["federated-dp ε=8"]
    assert gap["accuracy"] == pytest.approx(central["accuracy"] - fed_dp["metrics"]["accuracy"])
    assert "federated-dp ε=8" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "<table>" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_same_seed_gives_identical_metrics_other_seed_differs(
    messages: Path, tmp_path: Path
) -> None:
    outs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for out, seed in zip(outs, (4, 4, 5), strict=True):
        run_simulation_task(_config(messages, out, seed=seed), console=Console(quiet=True))
    first, second, other = (p.joinpath("metrics.json").read_bytes() for p in outs)
    assert first == second
    assert first != other


def test_central_dp_mode_calibrates_server_noise(messages: Path, tmp_path: Path) -> None:
    metrics = run_simulation_task(
        _config(messages, tmp_path, central_dp=True, epsilons=(20.0,), rounds=2),
        console=Console(quiet=True),
    )
    (setting,) = metrics["settings"]
    assert setting["extra"]["dp_mode"] == "central"
    # Client-level releases without amplification (q = 1), one per round, at ε <= 20.
    assert setting["noise_multiplier"] > 0
    assert all(e <= 20.0 for e in setting["epsilon_per_edge"].values())


def test_text_task_without_dataset_is_refused(tmp_path: Path) -> None:
    cfg = SimulationConfig(task="text", datasets=(), edges=2, rounds=1, out=tmp_path)
    with pytest.raises(SimulationError, match="needs --dataset"):
        run_simulation_task(cfg, console=Console(quiet=True))


def test_cli_reports_bad_input_in_one_line(messages: Path, tmp_path: Path) -> None:
    from fedprofile.cli import build_app

    result = CliRunner().invoke(
        build_app(),
        [
            "simulate",
            "--task",
            "text",
            "--dataset",
            str(messages),
            "--label-field",
            "nope",
            "--no-mask",
            "--edges",
            "2",
            "--rounds",
            "1",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code != 0
    assert "missing or empty label field 'nope'" in result.output


@pytest.mark.slow
def test_ray_engine_runs_the_same_apps(messages: Path, tmp_path: Path) -> None:
    metrics = run_simulation_task(
        _config(messages, tmp_path, engine="ray", rounds=1), console=Console(quiet=True)
    )
    (setting,) = metrics["settings"]
    assert setting["setting"] == "federated-dp"
    assert len(setting["epsilon_per_edge"]) == 3


@pytest.mark.slow
def test_behaviour_task_on_a_small_population(tmp_path: Path) -> None:
    cfg = SimulationConfig(
        task="behaviour", datasets=(), edges=2, rounds=1, out=tmp_path, users=150, baselines=True
    )
    metrics = run_simulation_task(cfg, console=Console(quiet=True))
    assert metrics["data"]["test_examples"] > 0
    assert {s["setting"] for s in metrics["settings"]} >= {"central", "federated-dp"}
