"""Scheduled text training on real edge stores: warm start, ledgers compose, the budget stops it.

Slow: each run is a Flower simulation on Ray over two edges.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from client.ledger import read_ledger
from client.store import EdgeStore
from server.crud.training import list_runs
from server.db import create_db_engine, upgrade_database
from simulations.schedule import run_every
from simulations.train import TrainingPlan, one_run, training_run_config

from ..client.training_factories import add_labelled_messages, make_edge

pytestmark = pytest.mark.slow


def test_runs_warm_start_compose_each_ledger_and_stop_at_the_budget(tmp_path: Path) -> None:
    edges = tmp_path / "edges"
    for name in ("desk", "web"):
        ids = make_edge(edges / name, subjects=600, name=name, channel=name)
        add_labelled_messages(edges / name, ids, per_subject=2, seed=len(name))
    url = f"sqlite:///{tmp_path / 'server.db'}"
    upgrade_database(url)
    # Enough people and ε per run that the first run learns well beyond DP noise: the
    # comparison below then does not depend on the draw of the noise.
    config = training_run_config(
        task="text", rounds=3, epsilon=4.0, max_epsilon=6.0, database_url=url
    ).model_copy(update={"text_vocabulary": 2000})

    outcomes = run_every(one_run(TrainingPlan(edges=edges, config=config)),
                         every=timedelta(0), runs=6, sleep=lambda _: None)  # fmt: skip

    assert outcomes[-1].status == "budget_exhausted" and len(outcomes) >= 2
    assert all(o.status == "completed" for o in outcomes[:-1])
    for name in ("desk", "web"):
        with EdgeStore.for_edge_dir(edges / name) as store:
            ledger = read_ledger(store, "text")
        assert ledger is not None and ledger.epsilon() <= 6.0 and ledger.exhausted
        assert len({r.run_id for r in ledger.releases}) >= len(outcomes) - 1  # composed runs
    engine = create_db_engine(url)
    with Session(engine) as session:
        runs = list(reversed(list_runs(session=session)))
    engine.dispose()
    first_losses = [
        next(r.metrics["train-loss"] for r in run.rounds if r.phase == "train") for run in runs[:2]
    ]
    assert first_losses[1] < first_losses[0]  # the second run starts where the first ended
    assert runs[1].config["initial-model-version"] == "text:v3"
