"""Persons across channels on real edges and the real API (SQLite and PostgreSQL).

The app knows a customer by account id and device, the desk by phone: two strangers, until
the web edge sees a login with both. Then one person, read whole from either pseudonym.
Placeholders link nobody, hubs are reported, officers merge / detach / undo with audit, and
erasing one pseudonym erases the person.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from consent import RequestType
from privacy import IdentifierKind, Pseudonymizer, SigningKey
from server.audit.log import verify_chain
from server.audit.sink import DatabaseAuditSink
from server.crud.dsr import approve_request, create_request, execute_request, verify_request
from server.principal import Principal
from server.tables.audit_entry import AuditEntry
from server.tables.dsr import DataSubjectRequestCreate
from server.tables.token import Role

from ...client.edge_factories import KEY, NOW, PHONE, event_line
from ..edge_harness import Api, api, make_edge, sync

__all__ = ["api"]

ACCOUNT = "u-7781"
DEVICE = "a1b2c3d4e5f6a7b8"
PS = Pseudonymizer(KEY)
DESK = PS.pseudonym(IdentifierKind.PHONE, PHONE)
APP = PS.pseudonym(IdentifierKind.ACCOUNT_ID, ACCOUNT)
APP_REF = {"account_id": ACCOUNT, "device_id": DEVICE}
WEB_REF = {"phone": PHONE, "account_id": ACCOUNT}


def _lines(prefix: str, ref: dict[str, str], *types: str, channel: str) -> list[dict[str, Any]]:
    rows = []
    for i, kind in enumerate(types):
        line = event_line(f"{prefix}{i}", type=kind, channel=channel,
                          ts=NOW - timedelta(days=2 + i))  # fmt: skip
        line["customer"] = dict(ref)
        if kind == "purchase":
            line.update(amount=5000.0, category="electronics")
        rows.append(line)
    return rows


def _three_edges(tmp_path: Path, api: Api) -> None:
    app, _ = make_edge(tmp_path, api, "app", _lines("a", APP_REF, "purchase", "purchase",
                       "page_view", channel="app"), consent_for=[APP_REF])  # fmt: skip
    desk, _ = make_edge(tmp_path, api, "desk", _lines("d", {"phone": PHONE}, "complaint",
                        "cs_message", channel="desk"), consent_for=[{"phone": PHONE}])  # fmt: skip
    for store, channel in ((app, "app"), (desk, "desk")):
        sync(tmp_path, api, store, channel)
        store.close()
    # Two strangers so far: no identifier in common.
    assert api.read(DESK)["person"] is None and api.read(APP)["person"] is None
    web, _ = make_edge(tmp_path, api, "web", _lines("w", WEB_REF, "login", channel="web"),
                       consent_for=[WEB_REF])  # fmt: skip
    report = sync(tmp_path, api, web, "web")
    web.close()
    assert report.tokens_sent >= 2 and report.persons_linked == 2


def _person(api: Api, subject: str) -> dict[str, Any]:
    response = api.admin("GET", f"/subjects/{subject}/person")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_login_with_account_and_phone_links_app_and_desk_into_one_person(
    tmp_path: Path, api: Api
) -> None:
    _three_edges(tmp_path, api)

    desk_view = api.read(DESK)
    app_view = api.read(APP)
    assert desk_view["person"] is not None and desk_view["person"] == app_view["person"]
    assert desk_view["pseudonyms"] == 2
    fields = {f["name"]: f for f in desk_view["fields"]}
    assert fields["feature.monetary_90d"]["value"] == 10000  # the app's purchases
    # The web edge knows the desk's phone: the same pseudonym, a third contribution.
    assert set(fields["feature.monetary_90d"]["channels"]) == {"app", "desk", "web"}
    assert sorted(_person(api, DESK)["members"]) == sorted([DESK, APP])
    with Session(api.engine) as session:
        links = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "identity.link")
        ).all()
        assert len(links) == 2
        evidence = [entry.detail_json for entry in links]
        assert all("account_id:it_" in text for text in evidence)
        assert PHONE not in "".join(evidence) and ACCOUNT not in "".join(evidence)
        assert verify_chain(session=session).ok


def test_officer_detach_splits_undo_relinks_merge_joins_all_audited(
    tmp_path: Path, api: Api
) -> None:
    _three_edges(tmp_path, api)
    reason = {"reason": "customer says the account is her son's"}

    detached = api.admin("POST", "/identity/detachments", json={"subject": APP, **reason})
    assert detached.status_code == 200, detached.text
    assert api.read(DESK)["person"] is None and _person(api, APP)["members"] == [APP]
    undo = api.admin("POST", f"/identity/decisions/{detached.json()['decision']}/undo")
    assert undo.status_code == 200 and undo.json()["linked"] == 2
    assert api.read(DESK)["pseudonyms"] == 2
    again = api.admin("POST", f"/identity/decisions/{detached.json()['decision']}/undo")
    assert again.status_code == 422 and again.json()["error"] == "identity_decision_invalid"
    decisions = _person(api, DESK)["decisions"]
    assert [d["action"] for d in decisions] == ["detach"] and decisions[0]["undone_at"]
    with Session(api.engine) as session:
        actions = [e.action for e in session.exec(select(AuditEntry)).all()]
    assert {"identity.detach", "identity.undo", "identity.unlink"} <= set(actions)


def test_placeholder_phone_typed_by_fifty_customers_merges_nobody_and_hubs_are_reported(
    tmp_path: Path, api: Api
) -> None:
    # Fifty customers typing 11111111111 as their phone; the same fifty, logged in with their
    # own accounts, from devices reporting the zeroed advertising id; and all fifty showing
    # one real-looking member card (the shop's own), which is no placeholder.
    rows = []
    for i in range(50):
        account = f"user-{i:03d}"
        rows += _lines(f"p{i}-", {"phone": "11111111111"}, "page_view", channel="app")
        rows += _lines(f"d{i}-", {"account_id": account,
                                  "device_id": "00000000-0000-0000-0000-000000000000"},
                       "page_view", channel="app")  # fmt: skip
        rows += _lines(f"s{i}-", {"account_id": account, "member_card": "VIP-2024-889"},
                       "login", channel="app")  # fmt: skip
    consents = [{"account_id": f"user-{i:03d}"} for i in range(50)]
    edge, report = make_edge(tmp_path, api, "app", rows, consent_for=consents)
    # The placeholder phone is the strongest identifier: those lines are refused outright.
    assert report.rejected["event"] == 50
    assert all("placeholder" in e for e in report.errors)
    # The zeroed device id is a secondary identifier: the lines stay, the token does not.
    assert list(report.tokens_refused.values()) == [50]
    assert "placeholder" in next(iter(report.tokens_refused))
    synced = sync(tmp_path, api, edge, "app")
    edge.close()
    assert synced.persons_linked == 0

    first = PS.pseudonym(IdentifierKind.ACCOUNT_ID, "user-000")
    assert _person(api, first)["members"] == [first]
    hubs = api.admin("GET", "/identity/hubs").json()
    assert [(h["kind"], h["pseudonyms"]) for h in hubs] == [("member_card", 50)]
    assert "VIP" not in str(hubs)


def test_erasing_one_pseudonym_erases_the_person_everywhere(tmp_path: Path, api: Api) -> None:
    _three_edges(tmp_path, api)
    alice = Principal(role=Role.COMPLIANCE_OFFICER, name="alice")
    bob = Principal(role=Role.COMPLIANCE_OFFICER, name="bob")
    at = NOW + timedelta(days=1)
    with Session(api.engine, expire_on_commit=False) as session:
        audit = DatabaseAuditSink(session)
        body = DataSubjectRequestCreate(subject=DESK, request_type=RequestType.ERASE)
        from consent import load_default_catalogue

        catalogue = load_default_catalogue()
        rid = create_request(session=session, principal=alice, body=body, catalogue=catalogue,
                             audit=audit, at=at).id  # fmt: skip
        verify_request(session=session, request_id=rid, principal=alice, audit=audit, at=at)
        for officer in (alice, bob):
            approve_request(session=session, request_id=rid, principal=officer, audit=audit, at=at)
        done = execute_request(session=session, request_id=rid, principal=bob,
                               catalogue=catalogue, audit=audit,
                               signing_key=SigningKey.generate(), at=at)  # fmt: skip
    assert done.result is not None and done.result["linked_pseudonyms_erased"] == 1
    # No row of any table names either pseudonym (audit entries keep salted commitments).
    with api.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(sa_select(table)).mappings():
                text = " ".join(str(v) for v in row.values())
                assert DESK not in text and APP not in text, table.name


def test_access_export_covers_every_linked_pseudonym(tmp_path: Path, api: Api) -> None:
    from consent import load_default_catalogue
    from server.crud.dsr_export import export_document

    _three_edges(tmp_path, api)
    with Session(api.engine) as session:
        document = export_document(session=session, subject=DESK, request_id="r-1",
                                   catalogue=load_default_catalogue(), master_keys=None,
                                   at=NOW)  # fmt: skip
    assert [p["subject"] for p in document["linked_pseudonyms"]] == [APP]
    linked = document["linked_pseudonyms"][0]
    assert any(f["name"] == "feature.monetary_90d" and f["value"] == 10000
               for f in linked["profile"])  # fmt: skip
    assert linked["consents"] and document["profile"]


def test_tokens_of_a_pseudonym_without_consent_wait_on_the_edge_until_it_consents(
    tmp_path: Path, api: Api
) -> None:
    # The app edge holds an account nobody consented for (anywhere): the server refuses it.
    edge, _ = make_edge(tmp_path, api, "app", _lines("a", APP_REF, "page_view", channel="app"),
                        consent_for=[])  # fmt: skip
    first = sync(tmp_path, api, edge, "app")
    assert first.tokens_sent == 0
    assert len(edge.identity_tokens(unsynced_only=True)) == 2  # account and device, queued
    # The customer consents (at this edge); the next sync sends and the server keeps them.
    from client.ingest import ingest_file
    from privacy import Pseudonymizer as _P

    from ...client.edge_factories import FakeScrubber, consent_line, write_jsonl

    line = consent_line("late-grant", purpose="personalized_service", channel="app")
    line["customer"] = dict(APP_REF)
    ingest_file(store=edge, path=write_jsonl(tmp_path / "late.jsonl", [line]),
                pseudonymizer=_P(KEY), detector=FakeScrubber(), now=NOW)  # fmt: skip
    second = sync(tmp_path, api, edge, "app")
    edge.close()
    assert second.tokens_sent == 2 and _person(api, APP)["members"] == [APP]
