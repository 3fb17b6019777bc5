"""``fedprofile simulate --task decisions``: routing policies compared offline, same contacts.

Numbered steps (:func:`run_decision_simulation`):

1. a customer population with the profiles routing reads (:mod:`.population`);
2. the text stand-in, trained on its own generated messages (:mod:`.text_signals`);
3. calibration and evaluation contacts from the same population on different days
   (:mod:`.contacts`), each message scored by the text model;
4. the human-fallback threshold fitted on the calibration contacts (:mod:`.calibration`);
5. every policy routes the same evaluation contacts, and the outcome model
   (:mod:`.queueing`, :mod:`.params`) serves them with the same staffing and draws;
6. KPIs with 95% intervals and paired differences against first-in-first-out
   (:mod:`.kpis`); ``metrics.json``, plots and ``report.md`` (:mod:`.report`).

The policies are the arms of the default policy's routing experiment — ``fifo`` (no rules:
everyone to the general queue, in arrival order), ``rules`` (``models: false``: rules on
profile fields and the channel only), ``rules+models`` (every rule, live signals from the
text model, the fitted fallback) — plus two readings of the last: without any fallback,
and on the true labels (perfect models).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from models.decisions import Arm, DecisionPolicy, Fallback

from ..errors import SimulationError
from ..progress import step_progress
from .calibration import Calibration, calibrate_fallback
from .contacts import Contact, ContactParams, draw_contacts
from .kpis import paired_differences, policy_kpis
from .params import OutcomeParams
from .population import Customer, build_customers, population_summary
from .queueing import CentreRun, simulate_centre
from .report import write_decision_report
from .routers import PolicyRouter, Router, Routing, load_routing_policy, routing_arm, with_fallback
from .text_signals import HEADS, ScoredMessage, TextSignalModel, head_accuracy, train_text_model

logger = logging.getLogger(__name__)

BASELINE = "fifo"


@dataclass(frozen=True)
class DecisionSimulationConfig:
    """What the decision simulation runs.

    Parameters
    ----------
    out : Path
        Output directory.
    users : int
        Customers in the population.
    seed : int
        Seed of everything (population, contacts, text training set, bootstrap).
    days : int
        Working days of evaluation contacts.
    calibration_days : int
        Working days of calibration contacts (the fallback's held-out set).
    training_messages : int
        Generated messages the text stand-in is trained on.
    target_error : float
        Error rate automated model-driven decisions may have (upper 95% bound).
    high_value_share : float
        Share of customers that are high-value (by expected spend).
    contacts : ContactParams
        Contact volume and arrival profile.
    outcome : OutcomeParams
        The contact-outcome model.
    """

    out: Path
    users: int = 1000
    seed: int = 0
    days: int = 4
    calibration_days: int = 2
    training_messages: int = 4000
    target_error: float = 0.1
    high_value_share: float = 0.1
    contacts: ContactParams = field(default_factory=ContactParams)
    outcome: OutcomeParams = field(default_factory=OutcomeParams)

    def check(self) -> None:
        """Refuse settings the simulation cannot run.

        Raises
        ------
        SimulationError
            Naming the option and the rule.
        """
        if self.users < 50:
            raise SimulationError("--users must be at least 50 for the decisions task")
        if self.seed < 0:
            raise SimulationError("--seed must be >= 0 for the decisions task")
        if self.days < 1 or self.calibration_days < 1:
            raise SimulationError("days and calibration_days must be at least 1")
        if self.training_messages < 100:
            raise SimulationError("training_messages must be at least 100")
        if not 0.0 < self.target_error < 1.0:
            raise SimulationError("target_error must be within (0, 1)")
        if not 0.0 < self.high_value_share < 1.0:
            raise SimulationError("high_value_share must be within (0, 1)")

    def settings(self) -> dict[str, Any]:
        """Return the settings as plain JSON values (for ``metrics.json``)."""
        return {
            "users": self.users,
            "seed": self.seed,
            "days": self.days,
            "calibration_days": self.calibration_days,
            "training_messages": self.training_messages,
            "target_error": self.target_error,
            "high_value_share": self.high_value_share,
            "contacts": asdict(self.contacts),
            "outcome": self.outcome.as_dict(),
        }


@dataclass(frozen=True)
class PolicyRun:
    """One policy's routings and outcomes over the evaluation contacts."""

    name: str
    routings: tuple[Routing, ...]
    run: CentreRun


def run_policy(
    router: Router, contacts: list[Contact], params: OutcomeParams, *, open_seconds: float
) -> PolicyRun:
    """Route every contact with ``router`` and serve them with the outcome model."""
    routings = {c.contact_id: router.route(c) for c in contacts}
    run = simulate_centre(
        contacts, lambda c: routings[c.contact_id], params, open_seconds=open_seconds
    )
    return PolicyRun(router.name, tuple(routings[c.contact_id] for c in contacts), run)


def _score(model: TextSignalModel, contacts: list[Contact]) -> dict[str, ScoredMessage]:
    scored = model.score([c.text for c in contacts])
    return {c.contact_id: s for c, s in zip(contacts, scored, strict=True)}


def _routers(
    policy: DecisionPolicy,
    arms: dict[str, Arm],
    customers: list[Customer],
    scored: dict[str, ScoredMessage],
    calibration: Calibration,
) -> list[Router]:
    """Return the compared policies, in report order (``fifo`` first)."""
    fitted = with_fallback(policy, calibration.fallback)
    unguarded = with_fallback(policy, Fallback(min_confidence=0.0))
    models = arms["rules_models"]
    return [
        PolicyRouter("fifo", policy, arm=arms["fifo"], customers=customers, signals="none"),
        PolicyRouter("rules", policy, arm=arms["rules"], customers=customers, signals="none"),
        PolicyRouter(
            "rules+models", fitted, arm=models, customers=customers, signals="model", scored=scored
        ),
        PolicyRouter(
            "rules+models/no-fallback",
            unguarded,
            arm=models,
            customers=customers,
            signals="model",
            scored=scored,
        ),
        PolicyRouter(
            "rules+true-signals", fitted, arm=models, customers=customers, signals="truth"
        ),
    ]


def run_decision_simulation(cfg: DecisionSimulationConfig, *, console: Console) -> dict[str, Any]:
    """Run the comparison and write ``metrics.json``, plots and ``report.md`` into ``cfg.out``.

    Parameters
    ----------
    cfg : DecisionSimulationConfig
        What to run.
    console : Console
        Where progress and the summary go.

    Returns
    -------
    dict[str, Any]
        The metrics written to ``metrics.json``.

    Raises
    ------
    SimulationError
        For settings the simulation cannot run (the message says what to change).
    """
    cfg.check()
    # The linear algebra here is small: BLAS threads only fight each other (a 600-message
    # text model fitted 30 times slower with two OpenBLAS threads on a busy 2-core machine).
    with threadpool_limits(limits=1):
        return _run(cfg, console=console)


def _run(cfg: DecisionSimulationConfig, *, console: Console) -> dict[str, Any]:
    """Run the steps of :func:`run_decision_simulation` (settings already checked)."""
    started = time.perf_counter()
    steps: dict[str, float] = {}

    def mark(step: str) -> None:
        steps[step] = round(time.perf_counter() - started - sum(steps.values()), 2)

    try:
        cfg.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimulationError(f"cannot create --out {cfg.out}: {exc.strerror}") from exc
    # 1. The population.
    policy, allowed = load_routing_policy()
    with step_progress(console, "customers and profiles", total=cfg.users) as advance:
        customers, risk = build_customers(
            users=cfg.users,
            seed=cfg.seed,
            allowed_fields=allowed,
            high_value_share=cfg.high_value_share,
            progress=advance,
        )
    mark("population")
    # 2. The text stand-in, on its own messages.
    with step_progress(console, "text model (TF-IDF + LR)", total=1) as advance:
        model = train_text_model(
            messages=cfg.training_messages,
            seed=cfg.seed + 7_919,
            english_share=cfg.contacts.english_share,
        )
        advance(1, 1)
    mark("text_model")
    # 3. Calibration and evaluation contacts, scored.
    calibration_set = draw_contacts(
        customers, cfg.contacts, days=cfg.calibration_days, seed=cfg.seed, label="cal"
    )
    evaluation = draw_contacts(customers, cfg.contacts, days=cfg.days, seed=cfg.seed, label="eval")
    scored = _score(model, calibration_set) | _score(model, evaluation)
    accuracy = head_accuracy(
        [scored[c.contact_id] for c in evaluation],
        {h: [getattr(c, h) for c in evaluation] for h in HEADS},
    )
    mark("contacts")
    # 4. The human fallback, fitted on the calibration contacts.
    arms = {name: routing_arm(policy, name) for name in ("fifo", "rules", "rules_models")}
    calibration = calibrate_fallback(
        policy,
        arm=arms["rules_models"],
        contacts=calibration_set,
        customers=customers,
        scored=scored,
        target_error=cfg.target_error,
    )
    routers = _routers(policy, arms, customers, scored, calibration)
    mark("calibration")
    # 5. Every policy on the same contacts.
    open_seconds = 3600.0 * (cfg.contacts.close_hour - cfg.contacts.open_hour)
    runs: list[PolicyRun] = []
    with step_progress(console, "policies", total=len(routers)) as advance:
        for done, router in enumerate(routers, start=1):
            runs.append(run_policy(router, evaluation, cfg.outcome, open_seconds=open_seconds))
            advance(done, len(routers))
    mark("policies")
    # 6. KPIs and the report.
    baseline = next(r for r in runs if r.name == BASELINE)
    policies = []
    for number, result in enumerate(runs):
        kpis = policy_kpis(result.name, result.run, result.routings, seed=cfg.seed + number)
        kpis["same_routing_as_fifo"] = all(
            a.action == b.action for a, b in zip(result.routings, baseline.routings, strict=True)
        )
        kpis["vs_fifo"] = paired_differences(result.run.outcomes, baseline.run.outcomes)
        policies.append(kpis)
    metrics: dict[str, Any] = {
        "task": "decisions",
        "seed": cfg.seed,
        "settings": cfg.settings(),
        "population": population_summary(customers)
        | {"escalation_risk_holdout_auc": risk.holdout_auc},
        "contacts": _contact_summary(evaluation, calibration_set),
        "text_model": {
            "kind": "tfidf-char-1-3 + logistic regression (stand-in for the federated text model)",
            "trained_on": model.trained_on,
            "accuracy_on_evaluation_contacts": accuracy,
        },
        "calibration": calibration.as_dict(),
        "policies": policies,
    }
    write_decision_report(metrics, cfg.out, seconds=time.perf_counter() - started, steps=steps)
    _print_summary(console, metrics)
    return metrics


def _print_summary(console: Console, metrics: dict[str, Any]) -> None:
    """Print one line per policy and the fallback."""
    for p in metrics["policies"]:
        console.print(
            f"  {p['policy']:<26} n={p['n']}  transfer {p['transfer_rate']:.3f} "
            f"{p['transfer_rate_ci']}  FCR {p['resolution_rate']:.3f} {p['resolution_rate_ci']}"
            f"  first response {p['first_response_s']:.1f} s {p['first_response_s_ci']}"
        )
    cal = metrics["calibration"]
    console.print(
        f"  fallback: threshold {cal['min_confidence']:.3f}, error {cal['error_rate']}, "
        f"coverage {cal['coverage']}, fitted on {cal['fitted_on']} held-out decisions"
    )


def _contact_summary(evaluation: list[Contact], calibration: list[Contact]) -> dict[str, Any]:
    """Return counts and the true mix of the evaluation contacts."""
    n = len(evaluation)

    def mix(attribute: str) -> dict[str, float]:
        counts: dict[str, int] = {}
        for contact in evaluation:
            key = str(getattr(contact, attribute))
            counts[key] = counts.get(key, 0) + 1
        return {k: round(v / n, 4) for k, v in sorted(counts.items())}

    return {
        "evaluation": n,
        "calibration": len(calibration),
        "customers_contacting": len({c.customer for c in evaluation}),
        "intent": mix("intent"),
        "emotion": mix("emotion"),
        "urgency": mix("urgency"),
        "channel": mix("channel"),
        "needs_senior": round(sum(c.needs_senior for c in evaluation) / max(n, 1), 4),
        "simple_inquiry": round(sum(c.simple for c in evaluation) / max(n, 1), 4),
    }
