"""``fedprofile simulate``: small in-process runs through the real ServerApp / strategy."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from models import RunConfig, initial_weights
from simulations.errors import SimulationError
from simulations.labeled import generate_labeled_messages
from simulations.simulate import SimulationConfig, run_simulation_task
from simulations.task_data import TextSource

from ..client.training_factories import (
    NOW,
    flower_context,
    flower_message,
    make_edge,
    train_content,
)


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
    assert names == ["tfidf-lr", "central", "central-dp", "local-only", "federated", "federated-dp"]
    assert [s["baseline"] for s in metrics["settings"]] == [True] + [False] * 5
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
    assert written["settings"][4]["epsilon_per_edge"] == {
        "edge-0000": None,
        "edge-0001": None,
        "edge-0002": None,
    }
    central = written["settings"][1]["metrics"]
    gap = written["gaps_vs_central"]["federated-dp ε=8"]
    assert gap["accuracy"] == pytest.approx(central["accuracy"] - fed_dp["metrics"]["accuracy"])
    assert "federated-dp ε=8" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "<table>" in (tmp_path / "report.html").read_text(encoding="utf-8")
    best = written["best_baseline"]["accuracy"]
    assert best["setting"] == "tfidf-lr"
    assert written["gaps_vs_best_baseline"]["federated-dp ε=8"]["accuracy"] == pytest.approx(
        best["value"] - fed_dp["metrics"]["accuracy"]
    )
    # DP settings use the smaller text model, the others the large one.
    assert written["private_plan"] == {
        "text_vocabulary": 8000,
        "text_buckets": 0,
        "local_optimizer": "sgd",
        "weight_decay": 0.0,
    }


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


def test_simulate_and_a_deployed_edge_run_the_same_train_handler(
    messages: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import client.app

    seen: list[str] = []
    handler = client.app._train

    def spy(msg, context, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(type(kwargs["source"]).__name__)
        return handler(msg, context, **kwargs)

    monkeypatch.setattr(client.app, "_train", spy)
    run_simulation_task(_config(messages, tmp_path / "sim", rounds=1), console=Console(quiet=True))
    edge = tmp_path / "edge"
    make_edge(edge, subjects=12)
    reply = client.app.build_client_app({"batch-size": 4, "accountant": "rdp"}, clock=lambda: NOW)(
        flower_message(train_content(initial_weights(RunConfig())), "train"),
        flower_context(node_config={"data-path": str(edge)}),
    )

    assert not reply.has_error()
    assert seen == ["PartitionSource"] * 3 + ["StoreSource"]


def test_simulate_with_a_budget_stops_before_exceeding_it(messages: Path, tmp_path: Path) -> None:
    metrics = run_simulation_task(
        _config(messages, tmp_path, rounds=6, epsilons=(8.0,), max_epsilon=3.0),
        console=Console(quiet=True),
    )

    (setting,) = metrics["settings"]
    assert setting["extra"]["status"] == "budget_exhausted"
    assert setting["extra"]["rounds_trained"] < 6
    assert setting["extra"]["refusals"] and all(
        r["error_code"] == 3104 and "max-epsilon" in r["reason"]
        for r in setting["extra"]["refusals"]
    )
    assert all(0.0 < e <= 3.0 for e in setting["epsilon_per_edge"].values())


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
    assert {s["setting"] for s in metrics["settings"]} >= {
        "central",
        "federated-dp",
        "logreg",
        "gbdt",
        "bgnbd",
    }
    assert metrics["data"]["consent"].startswith("recorded")
    assert 0.5 < metrics["oracle"]["auc"] <= 1.0


def _purchase_log(path: Path, *, customers: int = 400, seed: int = 3) -> Path:
    """A purchase-only event log in the edge input schema: account ids, no consent, no text."""
    import random
    from datetime import UTC, datetime, timedelta

    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    lines = []
    for c in range(customers):
        rate = rng.lognormvariate(-3.0, 1.0)  # purchases per day while alive
        life = rng.expovariate(1 / 200)
        day = rng.uniform(0, 120)
        n = 0
        while day < min(life, 240):
            lines.append(
                {
                    "kind": "event",
                    "event_id": f"o-{c}-{n}",
                    "type": "purchase",
                    "channel": "web",
                    "ts": (start + timedelta(days=day)).isoformat(),
                    "customer": {"account_id": f"c{c:05d}"},
                    "amount": round(rng.uniform(5, 80), 2),
                    "currency": "USD",
                }
            )
            n += 1
            day += rng.expovariate(rate)
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def test_behaviour_task_on_a_purchase_log_with_a_fixed_time_split(tmp_path: Path) -> None:
    log = _purchase_log(tmp_path / "orders.jsonl")
    cfg = SimulationConfig(
        task="behaviour",
        datasets=(log,),
        edges=2,
        rounds=2,
        out=tmp_path / "out",
        baselines=True,
        cutoff=datetime(2025, 6, 1, tzinfo=UTC),
        label_window_days=60,
    )

    metrics = run_simulation_task(cfg, console=Console(quiet=True))

    names = [s["setting"] for s in metrics["settings"]]
    assert names[:3] == ["logreg", "gbdt", "bgnbd"]
    assert names[-1] == "federated-dp" and "central" in names
    data = metrics["data"]
    assert data["cutoff"] == "2025-06-01T00:00:00+00:00" and data["label_window_days"] == 60
    assert data["consent"].startswith("assumed")
    assert 0 < data["label_histogram"]["purchase"] < data["examples"]
    assert "oracle" not in metrics  # real data has no known latent rates
    bgnbd = next(s for s in metrics["settings"] if s["setting"] == "bgnbd")
    assert bgnbd["extra"]["converged"] and bgnbd["metrics"]["auc"] > 0.6
    assert metrics["best_baseline"]["auc"]["setting"] in {"logreg", "gbdt", "bgnbd"}


@pytest.mark.parametrize(
    ("cutoff", "message"),
    [
        (datetime(2024, 1, 1, tzinfo=UTC), "not after the first event"),
        (datetime(2027, 1, 1, tzinfo=UTC), "not before the last event"),
    ],
)
def test_a_cutoff_outside_the_log_is_refused_with_the_reason(
    tmp_path: Path, cutoff: datetime, message: str
) -> None:
    log = _purchase_log(tmp_path / "orders.jsonl", customers=30)
    cfg = SimulationConfig(
        task="behaviour", datasets=(log,), edges=1, rounds=1, out=tmp_path / "o", cutoff=cutoff
    )

    with pytest.raises(SimulationError, match=message):
        run_simulation_task(cfg, console=Console(quiet=True))


def test_cli_parses_cutoff_window_and_budget(tmp_path: Path) -> None:
    from fedprofile.cli import build_app

    log = _purchase_log(tmp_path / "orders.jsonl", customers=200)
    result = CliRunner().invoke(
        build_app(),
        [
            "simulate",
            "--task",
            "behaviour",
            "--dataset",
            str(log),
            "--cutoff",
            "2025-06-01T08:00:00+08:00",
            "--label-window-days",
            "45",
            "--max-epsilon",
            "50",
            "--edges",
            "2",
            "--rounds",
            "1",
            "--out",
            str(tmp_path / "out"),
        ],
    )

    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert written["plan"]["cutoff"] == "2025-06-01T08:00:00+08:00"
    assert written["plan"]["label_window_days"] == 45 and written["plan"]["max_epsilon"] == 50
    bad = CliRunner().invoke(build_app(), ["simulate", "--cutoff", "2025-06-01", "--out", "x"])
    assert bad.exit_code != 0 and "timezone" in bad.output
