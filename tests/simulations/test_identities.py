from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from client.identity import strongest_identifier
from client.schemas import CustomerRef
from privacy import IdentifierKind, normalize_identifier
from simulations.identities import LOGIN_CHANNELS, PHONE_CHANNELS, assign_identity
from simulations.synthetic import CHANNELS, PopulationConfig, write_population

PHONE = "13812345678"
EMAIL = "li.na@example.com"


def _assign(user: int, share: float, seed: int = 1):  # type: ignore[no-untyped-def]
    return assign_identity(user=user, phone=PHONE, email=EMAIL, seed=seed, cross_device_share=share)


def _normalized(ref: dict[str, str]) -> set[tuple[str, str]]:
    return {(k, normalize_identifier(IdentifierKind(k), v)) for k, v in ref.items()}


def test_without_cross_device_users_every_channel_knows_the_phone_once() -> None:
    for user in range(40):
        who = _assign(user, 0.0)

        assert not who.cross_device
        assert all(who.device_count(c) == 1 for c in CHANNELS)
        phones = {
            normalize_identifier(IdentifierKind.PHONE, who.customer(c)["phone"]) for c in CHANNELS
        }
        assert phones == {normalize_identifier(IdentifierKind.PHONE, PHONE)}


def test_cross_device_users_have_login_accounts_linked_only_by_phone_or_email() -> None:
    people = [_assign(user, 1.0) for user in range(200)]

    assert all(p.cross_device for p in people)
    assert max(p.device_count(c) for p in people for c in LOGIN_CHANNELS) >= 2
    logins = 0
    for who in people:
        for channel in PHONE_CHANNELS:
            assert who.customer(channel) == {"phone": PHONE}
        for channel in LOGIN_CHANNELS:
            for device in range(who.device_count(channel)):
                ref = who.customer(channel, device)
                CustomerRef.model_validate(ref)
                _normalized(ref)  # every identifier is one an edge can normalise
                if "phone" in ref:
                    continue
                logins += 1
                assert set(ref) <= {"account_id", "email"}
                assert ref.get("email", EMAIL) == EMAIL
                linked = who.customer(channel, device, link=True)
                assert linked == ref | {"phone": PHONE}
                kind, value = strongest_identifier(CustomerRef.model_validate(linked))  # type: ignore[misc]
                assert (kind, value) == (IdentifierKind.PHONE, PHONE)
    assert logins > 200


def test_devices_of_one_channel_are_distinct() -> None:
    for user in range(300):
        who = _assign(user, 1.0)
        for channel in LOGIN_CHANNELS:
            refs = [json.dumps(who.customer(channel, d)) for d in range(who.device_count(channel))]
            assert len(set(refs)) == len(refs)


def test_identity_is_deterministic_per_seed_and_user() -> None:
    assert _assign(5, 0.5).record() == _assign(5, 0.5).record()
    records = {json.dumps(_assign(u, 1.0, seed=s).record()) for u in (1, 2) for s in (1, 2)}
    assert len(records) == 4


def test_record_is_json_ground_truth() -> None:
    who = _assign(3, 1.0)

    record = json.loads(json.dumps(who.record()))

    assert record["user"] == 3 and record["cross_device"] is True
    assert set(record["channels"]) == set(CHANNELS)
    assert record["channels"]["desk"] == [{"phone": PHONE}]


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_assign_identity_rejects_bad_share(share: float) -> None:
    with pytest.raises(ValueError, match="cross_device_share"):
        _assign(0, share)


def test_population_lines_use_ground_truth_identities_and_link_by_phone(tmp_path: Path) -> None:
    config = PopulationConfig(users=60, days=14, seed=9, cross_device_share=0.6)
    summary = write_population(config, tmp_path)
    truth = [
        json.loads(x) for x in (tmp_path / "labels" / "identities.jsonl").read_text().splitlines()
    ]
    users = [json.loads(x) for x in (tmp_path / "users.jsonl").read_text().splitlines()]
    known = {
        json.dumps(ref, sort_keys=True): t["user"]
        for t in truth
        for refs in t["channels"].values()
        for ref in refs
    }

    seen: dict[int, set[str]] = defaultdict(set)
    links = profiled = 0
    for channel in CHANNELS:
        for raw in (tmp_path / f"{channel}.jsonl").read_text(encoding="utf-8").splitlines():
            customer = json.loads(raw)["customer"]
            # Logins and desk contacts also carry the name and birth date (quasi-identifiers).
            quasi = {k: customer.pop(k) for k in ("name", "birth_date") if k in customer}
            if len(customer) == 2:  # a linking login: the login identifier plus the phone
                links += 1
                login = {k: v for k, v in customer.items() if k != "phone"}
                user = known[json.dumps(login, sort_keys=True)]
                assert customer["phone"] == users[user]["phone"]
            else:
                user = known[json.dumps(customer, sort_keys=True)]
            if quasi:
                profiled += 1
                assert quasi["name"] == users[user]["name"]
            seen[user].add(json.dumps(customer, sort_keys=True))

    assert summary.cross_device_users == sum(t["cross_device"] for t in truth) > 0
    assert links > 0 and profiled > 0
    assert any(len(refs) >= 3 for refs in seen.values())  # several pseudonyms for one person
