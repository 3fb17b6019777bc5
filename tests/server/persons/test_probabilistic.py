"""Probabilistic linkage inside the server, on what real edges upload (SQLite and PostgreSQL).

The desk knows customers by phone, the app by account id: no identifier in common. Both
systems hold name, birth date and address (the app's with typos, other date spellings,
shortened addresses). Edges send keyed Bloom-filter encodings; the server links matches,
queues the review band, and officers' reviews are final.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from privacy import IdentifierKind, Pseudonymizer
from server.tables.identity import IdentityCandidate
from simulations.linkage_data import chinese_linkage_set

from ...client.edge_factories import KEY, NOW, event_line
from ..edge_harness import Api, api, make_edge, sync

__all__ = ["api"]

PS = Pseudonymizer(KEY)


def _rows(records: list[dict[str, str]], ref_of: Any, channel: str) -> list[dict[str, Any]]:
    rows = []
    for i, record in enumerate(records):
        line = event_line(f"{channel}-{i}", type="page_view", channel=channel,
                          ts=NOW - timedelta(days=1 + i % 20))  # fmt: skip
        quasi = {k: record[k] for k in ("name", "birth_date", "address")}
        line["customer"] = {**ref_of(record), **quasi}
        rows.append(line)
    return rows


def _phone(record: dict[str, str]) -> dict[str, str]:
    return {"phone": f"1391234{int(record['id'][1:]):04d}"}


def _account(record: dict[str, str]) -> dict[str, str]:
    return {"account_id": f"acct-{record['id']}"}


def test_desk_and_app_strangers_are_linked_on_encodings_and_reviews_are_final(
    tmp_path: Path, api: Api
) -> None:
    data = chinese_linkage_set(80, seed=5)
    desk, desk_report = make_edge(tmp_path, api, "desk", _rows(data.a, _phone, "desk"),
                                  consent_for=[_phone(r) for r in data.a])  # fmt: skip
    app, _ = make_edge(tmp_path, api, "app", _rows(data.b, _account, "app"),
                       consent_for=[_account(r) for r in data.b])  # fmt: skip
    assert desk_report.linkage_encodings == 80
    assert sync(tmp_path, api, desk, "desk").encodings_sent == 80
    linked = sync(tmp_path, api, app, "app").persons_linked
    desk.close()
    app.close()

    pseudonym = {r["id"]: PS.pseudonym(IdentifierKind.PHONE, _phone(r)["phone"]) for r in data.a}
    pseudonym |= {r["id"]: PS.pseudonym(IdentifierKind.ACCOUNT_ID, _account(r)["account_id"])
                  for r in data.b}  # fmt: skip
    person = {}
    for page in api.admin("GET", "/identity/persons", params={"limit": 1000}).json():
        person.update(dict.fromkeys(page["members"], page["person"]))
    found = sum(1 for a, b in data.truth if person.get(pseudonym[a]) is not None
                and person.get(pseudonym[a]) == person.get(pseudonym[b]))  # fmt: skip
    wrong = sum(1 for p in set(person.values())
                if len([m for m, q in person.items() if q == p]) > 2)  # fmt: skip
    assert found / len(data.truth) >= 0.9 and wrong == 0 and linked >= 2 * found
    # No raw value reached the server: encodings only (names are never in any table).
    with api.engine.connect() as conn:
        dumped = " ".join(str(v) for r in conn.exec_driver_sql(
            "SELECT record_json FROM identity_encoding") for v in r)  # fmt: skip
    assert not any(r["name"] in dumped for r in data.a)

    # An officer rejects an automatic match: the two stand apart, and a re-score keeps it so.
    with Session(api.engine) as session:
        auto = session.exec(
            select(IdentityCandidate).where(col(IdentityCandidate.status) == "linked")
        ).first()
        assert auto is not None
        pair = (auto.subject, auto.other)
        candidate_id = auto.id
    rejected = api.admin("POST", f"/identity/reviews/{candidate_id}", json={"decision": "reject"})
    assert rejected.status_code == 200 and rejected.json()["unlinked"] == 2
    person_of = api.admin("GET", f"/subjects/{pair[0]}/person").json()
    assert pair[1] not in person_of["members"]
    again = api.admin("POST", f"/identity/reviews/{candidate_id}", json={"decision": "accept"})
    assert again.status_code == 422
    reviews = api.admin("GET", "/identity/reviews").json()
    assert all(0.5 <= r["score"] < 0.99 for r in reviews)
