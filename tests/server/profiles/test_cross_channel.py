"""Issue 12's cross-channel scenario with real edges against the real API, SQLite and PostgreSQL.

A customer spends ¥23,988 on the web edge and complains at the desk edge (same phone, same
pseudonym). After both edges sync, the desk agent must read the *merged* spend, the tags the
server re-derives from merged fields, and the per-channel breakdown. When the server loses
the web edge's state, an ordinary re-sync sends nothing; ``sync --full`` repairs it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session

from privacy import IdentifierKind, Pseudonymizer
from server.tables.profile_field import ProfileField
from server.tables.upload_receipt import UploadReceipt

from ...client.edge_factories import KEY, NOW, PHONE, event_line
from ..edge_harness import Api, api, edge_token, make_edge, sync
from ..factories import bearer

__all__ = ["api"]  # the parametrised fixture (SQLite, PostgreSQL)

SUBJECT = Pseudonymizer(KEY).pseudonym(IdentifierKind.PHONE, PHONE)
SPEND = 23988.0


def _web_rows() -> list[dict[str, Any]]:
    rows = [event_line(f"wv{d}", ts=NOW - timedelta(days=d), category="数码", session_id=f"s{d}")
            for d in range(1, 30, 2)]  # fmt: skip
    rows.append(event_line("wp", type="purchase", amount=SPEND, category="electronics",
                           ts=NOW - timedelta(days=3)))  # fmt: skip
    return rows


def _desk_rows() -> list[dict[str, Any]]:
    rows = []
    for d in (2, 5, 9):
        ts = NOW - timedelta(days=d)
        rows.append(event_line(f"dc{d}", type="complaint", channel="desk", ts=ts))
        rows.append(event_line(f"dm{d}", type="cs_message", channel="desk", ts=ts))
    return rows


def test_desk_agent_reads_merged_spend_and_rederived_tags_then_full_resync_repairs(
    tmp_path: Path, api: Api
) -> None:
    # Prepare: a web edge that saw the purchase, a desk edge that saw the complaints.
    web, _ = make_edge(tmp_path, api, "web", _web_rows())
    desk, _ = make_edge(tmp_path, api, "desk", _desk_rows())
    # Execute: the web edge syncs first, the desk edge last (it used to win every field).
    assert sync(tmp_path, api, web, "web").uploads_delivered > 0
    assert sync(tmp_path, api, desk, "desk").uploads_delivered > 0
    profile = api.fields(SUBJECT)

    # Assert: the spend is the sum of both channels; the breakdown shows each contribution.
    spend = profile["feature.monetary_90d"]
    assert spend["value"] == SPEND and spend["merge"] == "sum"
    assert spend["channels"] == ["desk", "web"]
    by_channel = {c["channel"]: c["value"] for c in spend["contributions"]}
    assert by_channel == {"web": SPEND, "desk": 0}
    # Tags re-derived on the server from merged fields, against what the desk alone said.
    rich, churn = profile["tag.high_purchasing_power"], profile["tag.churn_risk"]
    assert rich["merge"] == "derived" and rich["value"] is True
    assert churn["merge"] == "derived" and churn["value"] is False
    desk_says = {c["channel"]: c["value"] for c in churn["contributions"]}
    assert desk_says["desk"] is True  # the desk's own view: no purchase seen there
    assert {e["feature"] for e in rich["explanation"]} >= {"monetary_90d"}
    routing = api.fields(SUBJECT, "service_routing")
    assert routing["tag.escalation_need"]["merge"] == "derived"
    assert routing["feature.complaints_90d"]["value"] == 3

    # The server loses the web edge's state (fields and receipts).
    with Session(api.engine) as session:
        session.exec(delete(ProfileField).where(ProfileField.source_channel == "web"))  # type: ignore[call-overload]
        session.exec(delete(UploadReceipt))  # type: ignore[call-overload]
        session.commit()
    assert api.fields(SUBJECT)["feature.monetary_90d"]["value"] == 0
    # An ordinary re-sync sends nothing: the edge believes the server is up to date.
    again = sync(tmp_path, api, web, "web")
    assert again.uploads_enqueued == 0 and api.fields(SUBJECT)["feature.monetary_90d"]["value"] == 0
    # A full snapshot repairs it.
    full = sync(tmp_path, api, web, "web", full=True)
    assert full.uploads_delivered > 0
    repaired = api.fields(SUBJECT)
    assert repaired["feature.monetary_90d"]["value"] == SPEND
    assert repaired["tag.high_purchasing_power"]["value"] is True
    web.close()
    desk.close()


def test_full_sync_drops_contributions_the_edge_no_longer_holds(tmp_path: Path, api: Api) -> None:
    # Prepare: the web edge synced, then the server holds a stale web score the edge dropped.
    web, _ = make_edge(tmp_path, api, "web", _web_rows())
    sync(tmp_path, api, web, "web")
    stale = {"purpose": "personalized_service", "fields": [
        {"name": "score.purchase_propensity", "value": 0.9, "computed_at": NOW.isoformat()}]}
    put = api.client.put(f"/api/v1/subjects/{SUBJECT}/profile", json=stale,
                         headers={**bearer(edge_token(tmp_path, "web")),
                                  "Idempotency-Key": "stale-1"})  # fmt: skip
    assert put.status_code == 200, put.text
    assert "score.purchase_propensity" in api.fields(SUBJECT)
    # Execute
    sync(tmp_path, api, web, "web", full=True)
    # Assert: the snapshot replaced the web edge's contributions for that purpose.
    after = api.fields(SUBJECT)
    assert "score.purchase_propensity" not in after
    assert after["feature.monetary_90d"]["value"] == SPEND
    web.close()
