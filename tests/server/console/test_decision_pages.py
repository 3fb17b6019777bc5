"""The decision pages: rules, decisions, alerts and experiments, in both languages."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.decisions import ActionKind, DecisionPolicy, Fallback, FallbackReason
from server.console.i18n import MESSAGES
from server.decisions.kpis import rate_ci
from server.decisions.source import DecisionSetup
from server.tables.decision import DecisionRow, DecisionTrigger
from server.tables.experiment_outcome import ExperimentOutcome
from tests.server.factories import T0, make_pseudonym

from .factories import logged_in, login

PAGES = ["/console/rules", "/console/decisions", "/console/alerts", "/console/experiments"]


def _decision(
    subject: str,
    *,
    minutes: int,
    kind: str,
    action: dict[str, object],
    automated: bool = True,
    fallback: str | None = None,
    rule: str | None = None,
    purpose: str = "service_routing",
    arm: str | None = None,
) -> DecisionRow:
    inputs = {"feature.monetary_90d": 4321.5}
    rules = [{"rule": rule, "reason_zh": "理由", "reason_en": "reason", "inputs": inputs,
              "confidence": 0.9}] if rule else []  # fmt: skip
    return DecisionRow(
        id=str(uuid.uuid4()), subject=subject, person=None, purpose=purpose, channel="web",
        policy_version="2026-12", experiment="routing_arms" if arm else None, arm=arm,
        action_kind=kind, action_json=json.dumps(action), automated=automated,
        decided_by=None if automated else "human", fallback=fallback, confidence=0.42,
        rules_json=json.dumps(rules), fields_read_json="[]",
        decided_at=T0 + timedelta(minutes=minutes), actor="edge:web-1", role="edge",
    )  # fmt: skip


def _outcome(arm: str, contacts: int, resolved: int, edge: str = "web-1") -> ExperimentOutcome:
    return ExperimentOutcome(
        experiment="routing_arms", arm=arm, edge_id=edge, day="2026-11-20", contacts=contacts,
        resolved=resolved, transferred=contacts // 4, first_response_sum=30.0 * contacts,
        first_response_sumsq=1000.0 * contacts, order_value_sum=100.0 * contacts,
        order_value_sumsq=12000.0 * contacts, retained=contacts // 2,
        retention_known=contacts, received_at=T0,
    )  # fmt: skip


@pytest.fixture()
def seeded(memory_engine: Engine) -> dict[str, str]:
    """Three decisions (one to a human, one risk alert), two triggers, two arms' outcomes."""
    alice, bob, carol = (make_pseudonym(n) for n in ("dec-alice", "dec-bob", "dec-carol"))
    with Session(memory_engine) as session:
        routed = _decision(
            alice,
            minutes=1,
            kind="queue",
            rule="urgent_complaint",
            arm="rules",
            action={"kind": "queue", "queue": "complaints", "priority": 6},
        )
        human = _decision(
            bob,
            minutes=2,
            kind="human",
            automated=False,
            fallback="low_confidence",
            action={"kind": "human", "queue": "general"},
        )
        alert = _decision(
            carol,
            minutes=3,
            kind="risk_alert",
            rule="fraud_pattern",
            purpose="risk_control",
            action={"kind": "risk_alert", "level": "high"},
        )
        session.add_all([routed, human, alert])
        session.add(
            DecisionTrigger(
                id=str(uuid.uuid4()),
                purpose="proactive_service",
                person_key=alice,
                subject=alice,
                rule="order_delay_reminder",
                period="2026-11-20",
                decision_id=routed.id,
                action_json="{}",
                created_at=T0,
                delivered_at=T0 + timedelta(minutes=5),
            )
        )
        session.add(
            DecisionTrigger(
                id=str(uuid.uuid4()),
                purpose="risk_control",
                person_key=carol,
                subject=carol,
                rule="fraud_pattern",
                period="2026-W47",
                decision_id=alert.id,
                action_json="{}",
                created_at=T0 + timedelta(minutes=3),
            )
        )
        session.add_all([_outcome("fifo", 120, 60), _outcome("rules", 12, 11)])
        session.commit()  # fmt: skip
    return {"alice": alice, "bob": bob, "carol": carol}


def _fitted(console: TestClient) -> None:
    """Swap in the shipped policy with a measured fallback threshold."""
    setup: DecisionSetup = console.app.state.decisions  # type: ignore[attr-defined]
    fallback = Fallback(min_confidence=0.83, target_error=0.05, error_rate=0.031,
                        coverage=0.62, fitted_on=1200)  # fmt: skip
    policy = setup.policy.policy.model_copy(update={"fallback": fallback})
    console.app.state.decisions = DecisionSetup(  # type: ignore[attr-defined]
        policy=DecisionPolicy(policy, setup.policy.rules), arm_key=setup.arm_key
    )


def test_decision_pages_need_an_officer(console: TestClient, agent_token: str) -> None:
    for page in PAGES:
        response = console.get(page, follow_redirects=False)
        assert response.status_code == 303, page
        assert response.headers["location"] == "/console/login"
    assert login(console, agent_token).status_code == 403
    assert console.get("/console/rules", follow_redirects=False).status_code == 303


def test_every_decision_page_renders_in_both_languages_with_its_nav_link(
    console: TestClient, officer_a: str
) -> None:
    logged_in(console, officer_a)
    for page, en, zh in zip(
        PAGES, ("Rules", "Decisions", "Alerts", "Experiments"),
        ("决策规则", "决策记录", "预警与触达", "实验"), strict=True,
    ):  # fmt: skip
        english = console.get(page, params={"lang": "en"})
        chinese = console.get(page, params={"lang": "zh"})
        assert english.status_code == 200 and chinese.status_code == 200, page
        assert f'aria-current="page">{en}<' in english.text
        assert f'aria-current="page">{zh}<' in chinese.text
        assert "style=" not in english.text and "<script>" not in english.text


def test_rules_page_shows_the_policy_and_a_hand_set_threshold(
    console: TestClient, officer_a: str
) -> None:
    logged_in(console, officer_a)
    page = console.get("/console/rules", params={"lang": "en"}).text
    chinese = console.get("/console/rules", params={"lang": "zh"}).text

    assert 'id="policy-version">2026-12<' in page
    row = page[page.index('data-rule="senior_high_value_complaint"') :]
    row = row[: row.index("</tr>")]
    assert "queue:senior/complaints!8" in row and "feature.monetary_90d" in row
    assert "intent" in row and "urgency" in row and ">yes<" in row
    assert "signal_intent == &#39;complaint&#39;" in row
    assert "An urgent or angry complaint from a high-value customer" in row
    assert 'id="fallback-threshold">0.700<' in page
    assert "hand-set, not measured" in page
    assert "手动设置，未经测量" in chinese and "高价值客户的紧急或负面投诉" in chinese
    assert "Default" in page and "queue:general" in page and "routing_arms" in page


def test_rules_page_shows_a_fitted_threshold_with_its_measured_error(
    console: TestClient, officer_a: str
) -> None:
    _fitted(console)
    logged_in(console, officer_a)
    page = console.get("/console/rules", params={"lang": "en"}).text
    chinese = console.get("/console/rules", params={"lang": "zh"}).text

    assert 'id="fallback-threshold">0.830<' in page
    assert 'id="fallback-error">3.1%<' in page and 'id="fallback-target">5.0%<' in page
    assert 'id="fallback-coverage">62.0%<' in page and 'id="fallback-fitted">1200<' in page
    assert "hand-set" not in page
    assert "实测错误率" in chinese and "3.1%" in chinese and "未经测量" not in chinese


def test_decisions_page_lists_newest_first_with_counts_and_human_share(
    console: TestClient, officer_a: str, seeded: dict[str, str]
) -> None:
    logged_in(console, officer_a)
    page = console.get("/console/decisions", params={"lang": "en"}).text
    chinese = console.get("/console/decisions", params={"lang": "zh"}).text

    assert page.index(seeded["carol"][:15]) < page.index(seeded["bob"][:15])
    assert page.index(seeded["bob"][:15]) < page.index(seeded["alice"][:15])
    for subject in seeded.values():  # pseudonyms shortened, never whole
        assert subject not in page and subject not in chinese
    assert "4321.5" not in page  # a rule's inputs are never shown
    assert 'id="decision-count">3<' in page and 'id="human-count">1<' in page
    assert 'id="human-share">33.3%<' in page
    assert 'data-kind="risk_alert"><td>risk alert</td><td class="num">1<' in page
    assert "confidence below threshold" in page and "urgent_complaint" in page
    assert "complaints !6" in page and "routing_arms/rules" in page and "0.42" in page
    assert "置信度低于阈值" in chinese and "风险预警" in chinese and "人工决策占比" in chinese

    only = console.get("/console/decisions", params={"kind": "human", "lang": "en"}).text
    assert seeded["bob"][:15] in only and seeded["alice"][:15] not in only.split("<tbody>")[-1]


def test_alerts_page_shows_triggers_delivered_or_pending_and_risk_alerts(
    console: TestClient, officer_a: str, seeded: dict[str, str]
) -> None:
    logged_in(console, officer_a)
    page = console.get("/console/alerts", params={"lang": "en"}).text
    chinese = console.get("/console/alerts", params={"lang": "zh"}).text

    triggers = page[page.index('id="triggers"') : page.index('id="risk-alerts"')]
    assert triggers.index("fraud_pattern") < triggers.index("order_delay_reminder")
    assert "2026-W47" in triggers and "pending" in triggers and "delivered" in triggers
    assert 'id="pending-count">1<' in page
    alerts = page[page.index('id="risk-alerts"') :]
    assert seeded["carol"][:15] in alerts and seeded["bob"][:15] not in alerts
    assert "risk alert" in alerts and "high" in alerts
    assert all(s not in page for s in seeded.values())
    assert "待送达" in chinese and "已送达" in chinese and "风险预警" in chinese


def test_experiments_page_shows_kpis_with_intervals_and_suppresses_small_arms(
    console: TestClient, officer_a: str, seeded: dict[str, str]
) -> None:
    logged_in(console, officer_a)
    page = console.get("/console/experiments", params={"lang": "en"}).text
    chinese = console.get("/console/experiments", params={"lang": "zh"}).text

    fifo = page[page.index('data-arm="fifo"') :]
    fifo = fifo[: fifo.index("</tr>")]
    low, high = rate_ci(60, 120)
    assert ">120<" in fifo and "50.0%" in fifo
    assert f"[{low * 100:.1f}, {high * 100:.1f}]" in fifo
    assert "25.0%" in fifo and "30.0" in fifo and "100.0" in fifo
    small = page[page.index('data-arm="rules"') :]
    small = small[: small.index("</tr>")]
    assert ">12<" in small and "suppressed (below 30)" in small and "91.7%" not in small
    assert 'data-arm="rules_models"' in page  # declared, nothing reported: suppressed at 0
    assert "已隐藏（少于 30）" in chinese and "解决率" in chinese


def test_every_action_kind_and_fallback_reason_has_a_label() -> None:
    for lang in ("en", "zh"):
        keys = set(MESSAGES[lang])  # type: ignore[index]
        assert {f"kind.{k.value}" for k in ActionKind} | {"kind.none"} <= keys
        assert {f"fallback.{r.value}" for r in FallbackReason} <= keys
