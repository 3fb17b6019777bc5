"""Every console page through the FastAPI test client: login, roles, content, languages."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import EdgeCredential
from privacy import verify_signed
from server.tables.audit_entry import AuditEntry
from tests.server.factories import ADMIN_TOKEN, FakeClock, bearer, make_pseudonym

from .factories import csrf_of, ledger_report, logged_in, login, seed_consents

PAGES = [
    "/console/", "/console/consent", "/console/requests", "/console/audit", "/console/budget",
    "/console/identity", "/console/models",
]  # fmt: skip


def _entries(engine: Engine, action: str) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).where(col(AuditEntry.action) == action)))


def test_pages_redirect_to_login_without_a_session(console: TestClient) -> None:
    for page in PAGES:
        response = console.get(page, follow_redirects=False)
        assert response.status_code == 303, page
        assert response.headers["location"] == "/console/login"


def test_login_sets_a_strict_httponly_short_cookie(console: TestClient, officer_a: str) -> None:
    response = login(console, officer_a)
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if "console_session=" in c)
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/console" in lowered
    assert int(re.search(r"max-age=(\d+)", lowered).group(1)) <= 3600  # type: ignore[union-attr]
    assert officer_a not in cookie  # the token itself never goes into the cookie


def test_bad_token_shows_login_again(console: TestClient) -> None:
    response = login(console, "not-a-token-at-all-0000")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?failed=1"
    page = console.get(response.headers["location"])
    assert page.status_code == 401 and "not valid" in page.text


def test_login_without_its_csrf_cookie_is_refused(console: TestClient, officer_a: str) -> None:
    response = console.post("/console/login", data={"token": officer_a, "login_csrf": "forged"})
    assert response.status_code == 403


def test_agent_is_refused_with_a_403_page_and_the_refusal_is_audited(
    console: TestClient, agent_token: str, memory_engine: Engine
) -> None:
    response = login(console, agent_token)
    assert response.status_code == 403
    assert "may not use the compliance console" in response.text
    assert "console_session" not in response.headers.get("set-cookie", "")
    assert console.get("/console/", follow_redirects=False).status_code == 303
    refused = _entries(memory_engine, "console.login")
    assert [(e.actor, e.outcome) for e in refused] == [("agent:desk-7", "refused")]


def test_officer_sees_every_page_in_both_languages(console: TestClient, officer_a: str) -> None:
    logged_in(console, officer_a)
    for page in PAGES:
        english = console.get(page)
        assert english.status_code == 200, page
        assert "compliance_officer:li.wei" in english.text
        chinese = console.get(page + "?lang=zh")
        assert chinese.status_code == 200
        assert 'lang="zh-CN"' in chinese.text and "合规控制台" in chinese.text
    # The choice sticks through the cookie.
    assert "合规控制台" in console.get("/console/audit").text
    assert "compliance console" in console.get("/console/audit?lang=en").text


def test_static_admin_token_may_use_console(console: TestClient) -> None:
    logged_in(console, ADMIN_TOKEN)
    assert console.get("/console/").status_code == 200


def test_overview_counts_subjects_coverage_and_edges(
    console: TestClient, officer_a: str, edge: EdgeCredential, fake_clock: FakeClock
) -> None:
    seed_consents(console, edge.token, 10)
    logged_in(console, officer_a)
    page = console.get("/console/").text
    assert re.search(r'id="subject-count">10<', page)
    marketing = re.search(r'data-purpose="marketing">(.*?)</tr>', page, re.S)
    assert marketing is not None
    counts = re.findall(r'class="num">(\d+)<', marketing.group(1))
    assert counts == ["8", "2", "0"]  # every fifth subject withdrew marketing
    assert "web-1" in page and "reporting" in page
    fake_clock.advance(days=2)  # the session expired too: log in again
    logged_in(console, officer_a)
    assert "stale (&gt; 24 h)" in console.get("/console/").text


def test_publishing_a_material_notice_pauses_older_grants(
    console: TestClient, officer_a: str, edge: EdgeCredential, memory_engine: Engine
) -> None:
    seed_consents(console, edge.token, 10)
    csrf = logged_in(console, officer_a)
    response = console.post(
        "/console/consent/notices",
        data={
            "csrf": csrf,
            "version": "2026-12",
            "purpose_marketing": "1",
            "material": "true",
            "url": "https://example.com/notice/2026-12",
            "language": "zh-CN",
            "text": "新的营销告知书",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = console.get(response.headers["location"]).text
    assert "2026-12" in page and "renewal: 8" in page.replace("</b>", "")
    marketing = re.search(r'data-purpose="marketing">(.*?)</tr>', page, re.S)
    assert marketing is not None
    assert re.findall(r'class="num[^"]*">(\d+)<', marketing.group(1)) == ["0", "2", "8"]
    entries = _entries(memory_engine, "notice.publish")
    assert [e.actor for e in entries] == ["compliance_officer:li.wei"]
    # The same label again is a conflict, shown as a page, nothing stored.
    again = console.post(
        "/console/consent/notices",
        data={
            "csrf": csrf,
            "version": "2026-12",
            "purpose_marketing": "1",
            "url": "https://example.com/n",
            "language": "en",
            "text": "x",
        },
    )
    assert again.status_code == 409
    assert len(_entries(memory_engine, "notice.publish")) == 1


def test_post_without_csrf_is_refused_and_changes_nothing(
    console: TestClient, officer_a: str, memory_engine: Engine
) -> None:
    logged_in(console, officer_a)
    response = console.post(
        "/console/consent/notices",
        data={
            "csrf": "wrong",
            "version": "v9",
            "purpose_marketing": "1",
            "url": "https://example.com/n",
            "language": "en",
            "text": "x",
        },
    )
    assert response.status_code == 403
    assert "form expired" in response.text
    assert _entries(memory_engine, "notice.publish") == []


def test_subject_lookup_shows_history_and_is_audited(
    console: TestClient, officer_a: str, edge: EdgeCredential, memory_engine: Engine
) -> None:
    subjects = seed_consents(console, edge.token, 5)
    logged_in(console, officer_a)
    page = console.get("/console/consent", params={"subject": subjects[0]}).text
    history = re.search(r'<table id="history">(.*?)</table>', page, re.S)
    assert history is not None
    assert history.group(1).count("<tr>") == 1 + 3  # header + grant, grant, withdrawal
    unknown = console.get("/console/consent", params={"subject": make_pseudonym("nobody")})
    assert "No consent records" in unknown.text
    assert "not valid" in console.get("/console/consent", params={"subject": "alice"}).text
    lookups = _entries(memory_engine, "console.lookup")
    assert [e.outcome for e in lookups] == ["accepted", "not_found"]
    assert all(e.subject_commitment for e in lookups)  # a salted reference, not the pseudonym
    assert all(subjects[0] not in e.detail_json for e in lookups)


def test_budget_page_draws_one_line_per_edge(
    console: TestClient, officer_a: str, edge: EdgeCredential
) -> None:
    body = ledger_report("behaviour", [0.5, 1.1, 1.9, 2.6])
    response = console.put("/api/v1/edges/me/ledger", json=body, headers=bearer(edge.token))
    assert response.status_code == 200, response.text
    logged_in(console, officer_a)
    page = console.get("/console/budget").text
    assert page.count('<polyline class="series"') == 1
    assert page.count("<circle") == 4
    assert "budget 8" in page and "web-1 (web)" in page
    overview = console.get("/console/").text
    assert "2.600" in overview


def test_budget_page_shows_scheduled_runs_composing_up_to_the_exhausted_budget(
    console: TestClient, officer_a: str, edge: EdgeCredential
) -> None:
    epsilons = [1.2, 2.0, 2.9, 3.5, 3.9, 4.0]  # three runs of two rounds, budget 4
    body = ledger_report("text", epsilons, budget=4.0, rounds_per_run=2, exhausted=True)
    response = console.put("/api/v1/edges/me/ledger", json=body, headers=bearer(edge.token))
    assert response.status_code == 200, response.text
    logged_in(console, officer_a)

    page = console.get("/console/budget").text
    chinese = console.get("/console/budget", headers={"Accept-Language": "zh-CN"}).text

    assert 'data-model="text"' in page and "3 training runs" in page
    assert "exhausted" in page and "budget 4" in page
    assert "3 次训练" in chinese and "已耗尽" in chinese


def test_models_page_lists_versions_with_epsilon_and_metrics(
    console: TestClient, officer_a: str, memory_engine: Engine
) -> None:
    from datetime import timedelta

    from server.crud.model_registry import publish_version, record_version_metrics
    from server.crud.training import start_run
    from server.tables.model_version import ArchitectureSpec

    architecture = ArchitectureSpec(task="text", config={"text-vocabulary": 8000}, arrays=[])
    with Session(memory_engine) as session:
        run_id = start_run(session=session, model="text", config={}, num_rounds=2,
                           started_at=FakeClock().now)
        for server_round, epsilon in ((1, 1.25), (2, None)):
            publish_version(session=session, model="text", run_id=run_id,
                            server_round=server_round, weights=b"npz", architecture=architecture,
                            epsilon=epsilon, delta=1e-5,
                            created_at=FakeClock().now + timedelta(minutes=server_round))
        record_version_metrics(session=session, model="text", version=1,
                               metrics={"eval-auc": 0.8125, "num-examples": 40.0})
    logged_in(console, officer_a)

    page = console.get("/console/models").text
    chinese = console.get("/console/models", params={"lang": "zh"}).text
    only = console.get("/console/models", params={"model": "behaviour", "lang": "en"}).text

    assert page.index('data-version="text:v2"') < page.index('data-version="text:v1"')
    assert "1.250" in page and "eval-auc = 0.812" in page and "num-examples" not in page
    assert "no finite guarantee" in page and run_id[:8] in page
    assert 'aria-current="page">Models<' in page
    assert "模型版本" in chinese and "无有限隐私保证" in chinese
    assert 'data-version="text:v1"' not in only
    assert "No model version has been published yet." in only
    assert "style=" not in page and "<script>" not in page


def test_logout_ends_the_session(
    console: TestClient, officer_a: str, memory_engine: Engine
) -> None:
    csrf = logged_in(console, officer_a)
    response = console.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert console.get("/console/", follow_redirects=False).status_code == 303
    assert [e.actor for e in _entries(memory_engine, "console.logout")] == [
        "compliance_officer:li.wei"
    ]


def test_login_page_has_csrf_field(console: TestClient) -> None:
    assert csrf_of(console.get("/console/login").text)


def test_large_tables_count_coverage_in_the_background(
    console: TestClient, officer_a: str, edge: EdgeCredential, fake_clock: FakeClock
) -> None:
    seed_consents(console, edge.token, 10)
    console.app.state.console_coverage.inline_limit = 0  # type: ignore[attr-defined]
    logged_in(console, officer_a)
    first = console.get("/console/").text  # nothing counted yet: the page does not wait
    assert 'id="coverage-computing"' in first and 'data-purpose="marketing"' not in first
    second = console.get("/console/").text  # the background count has finished
    marketing = re.search(r'data-purpose="marketing">(.*?)</tr>', second, re.S)
    assert marketing is not None and "as of 2026-11-20 09:00:00" in second
    # Once stale, the old counts stay on the page while a refresh runs.
    fake_clock.advance(minutes=5)
    stale = console.get("/console/consent").text
    assert "as of 2026-11-20 09:00:00" in stale and 'data-purpose="marketing"' in stale
    assert "as of 2026-11-20 09:05:00" in console.get("/console/").text


def test_edge_token_is_refused_like_any_other_non_officer(
    console: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    response = login(console, edge.token)
    assert response.status_code == 403
    refused = _entries(memory_engine, "console.login")
    assert [(e.actor, e.outcome) for e in refused] == [(f"edge:{edge.edge_id}", "refused")]


def test_consent_receipts_download_signed_from_a_lookup(
    console: TestClient, officer_a: str, edge: EdgeCredential
) -> None:
    subjects = seed_consents(console, edge.token, 2)
    logged_in(console, officer_a)
    page = console.get("/console/consent", params={"subject": subjects[1]}).text
    links = re.findall(r'class="receipt" href="([^"]+)"', page)
    assert len(links) == 2
    download = console.get(links[0])
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    verify_signed(json.loads(download.text))
    other = links[0].replace(subjects[1], subjects[0])  # that receipt is not the other subject's
    assert console.get(other).status_code == 404


def test_overview_shows_an_edge_the_last_training_round_excluded_for_its_data(
    console: TestClient, officer_a: str, edge: EdgeCredential, memory_engine: Engine,
    fake_clock: FakeClock,
) -> None:
    from datetime import UTC, datetime

    from server.crud.training import record_round, start_run

    seed_consents(console, edge.token, 2)
    drift = "drift: feature drift PSI 0.83 > 0.25"
    broken = {"edge": "web-1", "channel": "web", "robust": [
        {"action": "flagged", "reason": drift},
        {"action": "excluded", "reason": f"data quality ({drift})"},
    ]}  # fmt: skip
    with Session(memory_engine) as session:
        run = start_run(session=session, model="behaviour", config={}, num_rounds=2,
                        started_at=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
        record_round(session=session, run_id=run, server_round=1, phase="train",
                     metrics={}, edges=[broken])  # fmt: skip
    logged_in(console, officer_a)
    page = console.get("/console/").text
    assert "excluded from the last training round" in page and "PSI 0.83" in page
    # Repaired: the next round judged nothing, and the flag clears.
    with Session(memory_engine) as session:
        record_round(session=session, run_id=run, server_round=2, phase="train",
                     metrics={}, edges=[{"edge": "web-1", "channel": "web"}])  # fmt: skip
    page = console.get("/console/?lang=zh").text
    assert "上一轮训练中被排除" not in page and "PSI 0.83" not in page
