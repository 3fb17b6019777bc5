"""Broken edges in simulation: flagged within one round, excluded, recovered after repair."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from rich.console import Console
from torch.utils.data import TensorDataset

from models.learners import BehaviourLearner
from simulations.errors import SimulationError
from simulations.faults import broken_partition, plan_fault
from simulations.runs import SettingResult, run_federated_setting
from simulations.simulate import NO_QUALITY_CHECKS, SimulationConfig, _build

EDGES, ROUNDS = 5, 4


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    cfg = SimulationConfig(
        task="behaviour",
        datasets=(),
        edges=EDGES,
        rounds=ROUNDS,
        out=tmp_path_factory.mktemp("faults"),
        users=900,
        seed=5,
    )
    data, _summary = _build(cfg, Console(quiet=True))
    return data, cfg.plan()


def _run(task: tuple[Any, Any], fault: str, *, checked: bool = True) -> SettingResult:
    data, plan = task
    chosen = plan_fault(fault, broken=1, edges=EDGES, rounds=ROUNDS, seed=5)
    return run_federated_setting(
        data,
        plan,
        dp_mode="local",
        target_epsilon=8.0,
        fault=chosen,
        overrides=None if checked else NO_QUALITY_CHECKS,
    )


def _marks(result: SettingResult) -> dict[int, str]:
    """Per round, what the server did to the broken edge."""
    out = {}
    for entry in result.extra["quality_rounds"]:
        notes = [n for v in entry["edges"].values() for n in v]
        if entry["refused_no_examples"]:
            out[entry["round"]] = "no data"
        elif any(n.startswith("excluded") for n in notes):
            out[entry["round"]] = "excluded"
        elif any(n.startswith("flagged") for n in notes):
            out[entry["round"]] = "flagged"
        else:
            out[entry["round"]] = "ok"
    return out


@pytest.mark.parametrize(
    "fault", ["schema-break", pytest.param("drifted-population", marks=pytest.mark.slow)]
)
def test_a_broken_edge_is_excluded_from_its_first_broken_round_and_recovers(
    task: tuple[Any, Any], fault: str
) -> None:
    result = _run(task, fault)
    assert result.extra["broken_rounds"] == [2, ROUNDS - 1]
    assert _marks(result) == {1: "ok", 2: "excluded", 3: "excluded", 4: "ok"}
    reasons = " ".join(
        n for e in result.extra["quality_rounds"] for v in e["edges"].values() for n in v
    )
    assert ("schema-break" if fault == "schema-break" else "drift") in reasons


@pytest.mark.slow
def test_an_empty_export_is_a_refusal_in_the_broken_rounds(task: tuple[Any, Any]) -> None:
    result = _run(task, "empty-export")
    refused = {e["round"]: e["refused_no_examples"] for e in result.extra["quality_rounds"]}
    assert refused == {1: 0, 2: 1, 3: 1, 4: 0}


@pytest.mark.slow
def test_without_quality_checks_the_broken_edge_is_aggregated(task: tuple[Any, Any]) -> None:
    result = _run(task, "schema-break", checked=False)
    assert set(_marks(result).values()) == {"ok"}
    assert result.extra["aggregation"]["quality_policy"] == "off"


def test_fault_plans_are_checked() -> None:
    with pytest.raises(SimulationError, match="unknown --fault"):
        plan_fault("flood", broken=1, edges=5, rounds=4, seed=0)
    with pytest.raises(SimulationError, match="--rounds 3 or more"):
        plan_fault("schema-break", broken=1, edges=5, rounds=2, seed=0)
    with pytest.raises(SimulationError, match="fewer than half"):
        plan_fault("schema-break", broken=3, edges=5, rounds=4, seed=0)


def test_a_schema_break_zeroes_half_the_behaviour_features() -> None:
    learner = BehaviourLearner.__new__(BehaviourLearner)
    object.__setattr__(learner, "name", "behaviour")
    data = TensorDataset(torch.ones(4, 6), torch.zeros(4, 1), torch.ones(4), torch.ones(4))
    broken = broken_partition(data, "schema-break", learner, seed=0)
    assert broken.tensors[0][:, :3].abs().sum() == 0 and broken.tensors[0][:, 3:].min() == 1
