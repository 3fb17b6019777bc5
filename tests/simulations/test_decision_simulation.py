"""``fedprofile simulate --task decisions``: the outcome model, the policies and metrics.json."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from models.decisions import Action, ActionKind
from simulations.decisions import (
    Contact,
    ContactParams,
    DecisionSimulationConfig,
    OutcomeParams,
    Routing,
    run_decision_simulation,
    simulate_centre,
)
from simulations.decisions.contacts import draw_contacts
from simulations.decisions.kpis import paired_differences, wilson_interval
from simulations.decisions.params import INTENT_DESK
from simulations.decisions.population import build_customers
from simulations.decisions.queueing import CentreRun, wait_penalty
from simulations.decisions.report import reading
from simulations.decisions.routers import load_routing_policy

KPIS = ("transfer_rate", "resolution_rate", "first_response_s")
OPEN_SECONDS = 12 * 3600.0


def _contact(
    number: int,
    *,
    intent: str = "complaint",
    emotion: str = "neutral",
    urgency: str = "normal",
    high_value: bool = False,
    arrival_s: float = 0.0,
    uniforms: tuple[float, ...] = (0.5, 0.5, 0.5, 0.5),
) -> Contact:
    return Contact(
        contact_id=f"t{number:05d}",
        day=0,
        arrival_s=arrival_s,
        customer=0,
        channel="web",
        text="",
        lang="zh",
        intent=intent,
        emotion=emotion,
        urgency=urgency,
        high_value=high_value,
        uniforms=uniforms,
        normals=(0.0, 0.0),
    )


def _day_of_contacts(n: int, *, seed: int) -> list[Contact]:
    """``n`` contacts with random truth and draws, spread over one opening day."""
    rng = random.Random(seed)
    arrivals = sorted(rng.uniform(0.0, OPEN_SECONDS) for _ in range(n))
    return [
        _contact(
            i,
            intent=rng.choice(["inquiry", "complaint", "purchase", "return"]),
            emotion=rng.choice(["negative", "neutral", "positive"]),
            urgency=rng.choice(["low", "normal", "urgent"]),
            high_value=rng.random() < 0.1,
            arrival_s=at,
            uniforms=tuple(rng.random() for _ in range(4)),
        )
        for i, at in enumerate(arrivals)
    ]


def _to(queue: str, priority: int = 0) -> Routing:
    if queue == "self_service":
        return Routing(Action(kind=ActionKind.SELF_SERVICE, entry="faq"), True, False, 1.0, None)
    return Routing(
        Action(kind=ActionKind.QUEUE, queue=queue, priority=priority), True, False, 1.0, None
    )


#: A deliberately wrong router: each intent to a desk not trained for it.
_WRONG = {"inquiry": "general", "complaint": "returns", "return": "sales", "purchase": "complaints"}


def _rates(run: CentreRun) -> dict[str, float]:
    n = len(run.outcomes)
    return {
        "transfer": sum(o.transferred for o in run.outcomes) / n,
        "fcr": sum(o.resolved_first_contact for o in run.outcomes) / n,
        "first": sum(o.first_response_s for o in run.outcomes) / n,
    }


# ---------------------------------------------------------------------- the outcome model


def test_outcome_model_when_routing_is_wrong_then_more_transfers_and_less_resolution() -> None:
    contacts = _day_of_contacts(700, seed=3)
    params = OutcomeParams()

    right = simulate_centre(
        contacts, lambda c: _to(INTENT_DESK[c.intent]), params, open_seconds=OPEN_SECONDS
    )
    wrong = simulate_centre(
        contacts, lambda c: _to(_WRONG[c.intent]), params, open_seconds=OPEN_SECONDS
    )
    fifo = simulate_centre(contacts, lambda c: _to("general"), params, open_seconds=OPEN_SECONDS)

    r, w, f = _rates(right), _rates(wrong), _rates(fifo)
    assert w["transfer"] > r["transfer"] + 0.15
    assert w["fcr"] < r["fcr"] - 0.15
    assert f["transfer"] > r["transfer"] and f["fcr"] < r["fcr"]


def test_outcome_model_is_deterministic_given_the_contacts_draws() -> None:
    contacts = _day_of_contacts(300, seed=5)
    route = lambda c: _to(INTENT_DESK[c.intent])  # noqa: E731

    first = simulate_centre(contacts, route, OutcomeParams(), open_seconds=OPEN_SECONDS)
    again = simulate_centre(contacts, route, OutcomeParams(), open_seconds=OPEN_SECONDS)

    assert first == again
    assert [o.contact_id for o in first.outcomes] == [c.contact_id for c in contacts]


def test_unskilled_agent_transfers_or_tries_by_the_contacts_own_draw() -> None:
    params = OutcomeParams()
    transfers = _contact(0, intent="return", uniforms=(0.5, 0.0, 0.0, 0.0))
    keeps = _contact(1, intent="return", uniforms=(0.5, 0.99, 0.0, 0.0))

    t = simulate_centre([transfers], lambda c: _to("sales"), params, open_seconds=OPEN_SECONDS)
    k = simulate_centre([keeps], lambda c: _to("sales"), params, open_seconds=OPEN_SECONDS)

    assert t.outcomes[0].transferred and not t.outcomes[0].resolved_first_contact
    assert t.outcomes[0].resolved  # the returns desk settles it after the transfer
    assert not k.outcomes[0].transferred and k.outcomes[0].resolved_first_contact


def test_high_value_complaint_needs_a_senior_agent_for_a_borderline_draw() -> None:
    params = OutcomeParams()
    draw = params.resolve_matched - params.authority_gap / 2  # between the two chances
    contact = _contact(
        0, intent="complaint", emotion="negative", high_value=True, uniforms=(0.5, 0.5, draw, 0.5)
    )

    senior = simulate_centre([contact], lambda c: _to("senior"), params, open_seconds=OPEN_SECONDS)
    desk = simulate_centre(
        [contact], lambda c: _to("complaints"), params, open_seconds=OPEN_SECONDS
    )

    assert senior.outcomes[0].resolved_first_contact and senior.outcomes[0].senior
    assert not desk.outcomes[0].resolved_first_contact


def test_self_service_settles_calm_inquiries_and_hands_over_the_rest() -> None:
    contacts = [
        _contact(
            i,
            intent=intent,
            emotion="neutral",
            urgency="normal",
            arrival_s=10.0 * i,
            uniforms=(u, 0.5, 0.5, 0.5),
        )
        for i, (intent, u) in enumerate([("inquiry", 0.5), ("complaint", 0.5), ("inquiry", 0.95)])
    ]

    run = simulate_centre(
        contacts, lambda c: _to("self_service"), OutcomeParams(), open_seconds=OPEN_SECONDS
    )

    calm, complaint, unlucky = run.outcomes
    assert (
        calm.resolved_first_contact
        and not calm.transferred
        and calm.first_handler == "self_service"
    )
    assert complaint.transferred and not complaint.resolved_first_contact
    assert unlucky.transferred  # the bot fails one in five calm inquiries


def test_fewer_agents_make_customers_wait_longer() -> None:
    contacts = _day_of_contacts(900, seed=7)
    thin = OutcomeParams(
        agents={"general": 2, "senior": 1, "complaints": 1, "returns": 1, "sales": 1}
    )
    route = lambda c: _to("general")  # noqa: E731

    full = simulate_centre(contacts, route, OutcomeParams(), open_seconds=OPEN_SECONDS)
    short = simulate_centre(contacts, route, thin, open_seconds=OPEN_SECONDS)

    assert _rates(short)["first"] > 5 * _rates(full)["first"]
    assert _rates(short)["fcr"] < _rates(full)["fcr"]  # the waiting penalty


def test_wait_penalty_grows_faster_for_urgent_contacts_and_is_capped() -> None:
    params = OutcomeParams()

    assert wait_penalty(30.0, urgent=True, params=params) == 0.0  # within the grace
    assert (
        0
        < wait_penalty(600.0, urgent=False, params=params)
        < wait_penalty(600.0, urgent=True, params=params)
    )
    assert wait_penalty(10**6, urgent=True, params=params) == params.max_wait_penalty


def test_outcome_params_refuse_nonsense_with_every_reason() -> None:
    with pytest.raises(ValueError, match="resolve_matched.*handoff_priority"):
        OutcomeParams(resolve_matched=1.5, handoff_priority=12)
    with pytest.raises(ValueError, match="agents"):
        OutcomeParams(agents={"general": 3})


def test_paired_differences_refuse_different_contacts() -> None:
    a = simulate_centre(
        [_contact(0)], lambda c: _to("general"), OutcomeParams(), open_seconds=OPEN_SECONDS
    )
    b = simulate_centre(
        [_contact(1)], lambda c: _to("general"), OutcomeParams(), open_seconds=OPEN_SECONDS
    )

    with pytest.raises(ValueError, match="same contacts"):
        paired_differences(a.outcomes, b.outcomes)


def test_wilson_interval_holds_the_rate() -> None:
    low, high = wilson_interval(30, 100)
    assert low < 0.3 < high and 0.2 < low and high < 0.4


# ---------------------------------------------------------------------- population, contacts


@pytest.fixture(scope="module")
def customers() -> list[Any]:
    _, allowed = load_routing_policy()
    people, _ = build_customers(users=60, seed=4, allowed_fields=allowed)
    return people


def test_contacts_are_reproducible_and_sets_are_disjoint(customers: list[Any]) -> None:
    params = ContactParams(contacts_per_day=120)

    one = draw_contacts(customers, params, days=1, seed=4, label="eval")
    again = draw_contacts(customers, params, days=1, seed=4, label="eval")
    other = draw_contacts(customers, params, days=1, seed=4, label="cal")

    assert one == again
    assert not {c.contact_id for c in one} & {c.contact_id for c in other}
    assert all(0.0 <= c.arrival_s <= 12 * 3600 for c in one)
    assert [c.arrival_s for c in one] == sorted(c.arrival_s for c in one)
    assert all(c.text for c in one) and any("<" in c.text for c in one)  # masked text


def test_profiles_hold_only_routing_fields_and_only_under_consent(customers: list[Any]) -> None:
    _, allowed = load_routing_policy()

    for customer in customers:
        assert set(customer.fields) <= set(allowed)
        if not customer.consented:
            assert customer.fields == {}
    consenting = [c for c in customers if c.consented]
    assert consenting and all("feature.monetary_90d" in c.fields for c in consenting)
    assert all(isinstance(c.fields["tag.escalation_need"], bool) for c in consenting)
    assert sum(c.high_value for c in customers) == pytest.approx(6, abs=1)


# ---------------------------------------------------------------------- the whole run


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("decisions")
    cfg = DecisionSimulationConfig(
        out=out,
        users=60,
        seed=2,
        days=1,
        calibration_days=1,
        training_messages=600,
        contacts=ContactParams(contacts_per_day=250),
    )
    return run_decision_simulation(cfg, console=Console(quiet=True)), out


def test_metrics_json_has_every_policy_with_kpis_and_intervals(
    small_run: tuple[dict[str, Any], Path],
) -> None:
    _, out = small_run
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))

    assert metrics["task"] == "decisions"
    names = [p["policy"] for p in metrics["policies"]]
    assert names[:3] == ["fifo", "rules", "rules+models"]
    for policy in metrics["policies"]:
        assert policy["n"] == metrics["contacts"]["evaluation"] > 100
        for kpi in KPIS:
            low, high = policy[f"{kpi}_ci"]
            assert low <= policy[kpi] <= high
        assert 0.0 <= policy["transfer_rate"] <= 1.0 and 0.0 <= policy["resolution_rate"] <= 1.0
        assert sum(policy["routed"].values()) == pytest.approx(1.0, abs=1e-4)
    calibration = metrics["calibration"]
    assert 0.0 <= calibration["min_confidence"] <= 1.0
    assert calibration["target_error"] == 0.1 and calibration["fitted_on"] >= 30
    assert {"error_rate", "coverage", "curve"} <= set(calibration)
    for name in ("report.md", "kpis.png", "routing.png", "calibration.png", "timings.json"):
        assert (out / name).stat().st_size > 0
    assert "fifo" in (out / "report.md").read_text(encoding="utf-8")


def test_policies_share_contacts_so_fifo_differs_from_itself_by_nothing(
    small_run: tuple[dict[str, Any], Path],
) -> None:
    metrics, _ = small_run
    by = {p["policy"]: p for p in metrics["policies"]}

    assert by["fifo"]["vs_fifo"]["transfer_rate"] == {"difference": 0.0, "ci": [0.0, 0.0]}
    assert by["fifo"]["routed"] == {"general": 1.0}
    assert by["rules+models"]["routed"] != {"general": 1.0}
    assert by["rules+models"]["same_routing_as_fifo"] is False


def test_reading_does_not_claim_what_the_intervals_do_not_show() -> None:
    def policy(name: str, rate: float, ci: list[float]) -> dict[str, Any]:
        return {
            "policy": name,
            "transfer_rate": rate,
            "transfer_rate_ci": ci,
            "resolution_rate": 1 - rate,
            "resolution_rate_ci": [1 - ci[1], 1 - ci[0]],
            "first_response_s": 5.0,
            "first_response_s_ci": [4.0, 6.0],
            "occupancy": 0.5,
            "routed": {"general": 1.0},
            "same_routing_as_fifo": False,
        }

    metrics = {
        "policies": [policy("fifo", 0.20, [0.17, 0.23]), policy("rules+models", 0.18, [0.15, 0.21])]
    }

    text = " ".join(reading(metrics))
    assert "intervals overlap" in text and "do not overlap" not in text


def test_cli_refuses_bad_input_with_a_reason(tmp_path: Path) -> None:
    from fedprofile.cli import build_app

    few = CliRunner().invoke(
        build_app(),
        ["simulate", "--task", "decisions", "--users", "20", "--out", str(tmp_path / "o")],
    )
    data = CliRunner().invoke(
        build_app(),
        ["simulate", "--task", "decisions", "--dataset", str(tmp_path), "--out", str(tmp_path)],
    )

    assert few.exit_code == 2 and "--users must be at least 50" in few.output
    assert data.exit_code != 0 and "--dataset" in data.output


@pytest.mark.slow
def test_default_run_rules_and_models_beat_fifo_with_separate_intervals(tmp_path: Path) -> None:
    metrics = run_decision_simulation(
        DecisionSimulationConfig(out=tmp_path), console=Console(quiet=True)
    )

    by = {p["policy"]: p for p in metrics["policies"]}
    fifo, models = by["fifo"], by["rules+models"]
    assert models["transfer_rate_ci"][1] < fifo["transfer_rate_ci"][0]
    assert models["resolution_rate_ci"][0] > fifo["resolution_rate_ci"][1]
