from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from client.convert import to_stored_consent
from client.identity import pseudonym_for
from client.schemas import ConsentLine, InputLine
from consent import ConsentEvent, ConsentState, Notice, NoticeRegistry, Purpose
from privacy import IdentifierKind, Pseudonymizer, normalize_identifier
from simulations.messages import Emotion, Intent
from simulations.synthetic import (
    CHANNELS,
    NOTICE_VERSION,
    RENEWED_NOTICE_VERSION,
    TRUTH_KEY,
    PopulationConfig,
    User,
    make_users,
    user_lines,
    write_population,
)

ADAPTER: TypeAdapter[object] = TypeAdapter(InputLine)


def _digest(directory: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(directory.glob("*.jsonl")):
        h.update(path.read_bytes())
    return h.hexdigest()


def test_population_same_seed_is_byte_identical(tmp_path: Path) -> None:
    config = PopulationConfig(users=40, days=14, seed=7)

    write_population(config, tmp_path / "a")
    write_population(config, tmp_path / "b")

    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_population_other_seed_differs(tmp_path: Path) -> None:
    write_population(PopulationConfig(users=40, days=14, seed=1), tmp_path / "a")
    write_population(PopulationConfig(users=40, days=14, seed=2), tmp_path / "b")

    assert _digest(tmp_path / "a") != _digest(tmp_path / "b")


def test_every_line_matches_the_edge_input_schema(tmp_path: Path) -> None:
    summary = write_population(PopulationConfig(users=60, days=21, seed=3), tmp_path)

    total = 0
    for channel in CHANNELS:
        for raw in (tmp_path / f"{channel}.jsonl").read_text(encoding="utf-8").splitlines():
            line = ADAPTER.validate_python(json.loads(raw))
            assert line.channel == channel  # type: ignore[attr-defined]
            total += 1

    assert total == summary.events + summary.messages + summary.consents
    assert summary.messages > 0 and summary.consents > 0


def test_messages_embed_the_users_pii(tmp_path: Path) -> None:
    write_population(PopulationConfig(users=80, days=30, seed=5), tmp_path)
    users = [json.loads(x) for x in (tmp_path / "users.jsonl").read_text().splitlines()]
    texts = [
        json.loads(raw)["text"]
        for channel in CHANNELS
        for raw in (tmp_path / f"{channel}.jsonl").read_text(encoding="utf-8").splitlines()
        if '"kind": "message"' in raw
    ]

    joined = "\n".join(texts)
    assert sum(u["phone"] in joined for u in users) > 10
    assert sum(u["id_number"] in joined for u in users) > 0
    assert sum(u["name"] in joined for u in users) > 10


def test_users_have_valid_identifiers_and_unique_phones() -> None:
    users = make_users(PopulationConfig(users=300, days=10, seed=11))

    phones = {normalize_identifier(IdentifierKind.PHONE, u.phone) for u in users}

    assert len(phones) == 300
    assert all(normalize_identifier(IdentifierKind.ID_NUMBER, u.id_number) for u in users)


def test_channel_mix_is_not_iid(tmp_path: Path) -> None:
    summary = write_population(PopulationConfig(users=200, days=14, seed=2), tmp_path)

    counts = summary.lines_per_channel
    assert max(counts.values()) > 1.5 * min(counts.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"users": 0},
        {"days": 3},
        {"english_share": 2.0},
        {"cross_device_share": -0.1},
        {"notice_renewal_at": 1.0},
    ],
)
def test_config_rejects_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PopulationConfig(**bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ consent churn
def _consent_states(directory: Path, channel: str) -> dict[str, ConsentState]:
    """Fold one channel's consent lines per pseudonym, as the edge converts them."""
    registry = NoticeRegistry(
        Notice.model_validate(n) for n in json.loads((directory / "notices.json").read_text())
    )
    pseudonymizer = Pseudonymizer(bytes(range(32)))
    events: dict[str, list[ConsentEvent]] = defaultdict(list)
    for raw in (directory / f"{channel}.jsonl").read_text(encoding="utf-8").splitlines():
        if '"kind": "consent"' not in raw:
            continue
        line = ADAPTER.validate_python(json.loads(raw))
        if isinstance(line, ConsentLine):
            subject = pseudonym_for(line.customer, pseudonymizer)
            events[subject].append(to_stored_consent(line, subject).event)
    return {s: ConsentState(e, notices=registry) for s, e in events.items()}


def test_consent_changes_over_time(tmp_path: Path) -> None:
    config = PopulationConfig(users=100, days=40, seed=4)
    write_population(config, tmp_path)
    states = {c: _consent_states(tmp_path, c) for c in CHANNELS}
    mid, end = config.start + timedelta(days=7), config.end

    everyone = [s for per in states.values() for s in per.values()]
    marketing, personal = Purpose.MARKETING, Purpose.PERSONALIZED_SERVICE
    second = timedelta(seconds=1)
    withdrawals = [
        (s, e.occurred_at)
        for s in everyone
        for e in s.events
        if e.status == "withdrawn" and e.purpose is marketing
    ]
    assert any(
        s.is_granted(marketing, at - second) and not s.is_granted(marketing, at + second)
        for s, at in withdrawals
    )
    # The material renewal pauses old grants until renewed; most users renew.
    paused = [s for s in everyone if s.needs_renewal(marketing, end)]
    renewed = [
        s
        for s in everyone
        if any(e.notice_version == RENEWED_NOTICE_VERSION for e in s.events)
        and s.is_granted(marketing, end)
    ]
    assert paused and len(renewed) > len(paused)
    # SMS marketing grants expire; some personal-service grants are separate consents.
    expired = [
        s
        for s in states["sms"].values()
        if any(e.expires_at is not None and e.expires_at <= end for e in s.events)
    ]
    assert expired
    assert any(s.has_separate(personal, mid) for s in everyone)
    assert any(s.is_granted(personal, mid) and not s.has_separate(personal, mid) for s in everyone)


def test_without_renewal_every_line_has_the_first_notice(tmp_path: Path) -> None:
    write_population(PopulationConfig(users=50, days=14, seed=1, notice_renewal_at=None), tmp_path)

    versions = {
        json.loads(raw).get("notice_version")
        for c in CHANNELS
        for raw in (tmp_path / f"{c}.jsonl").read_text(encoding="utf-8").splitlines()
    } - {None}

    assert versions == {NOTICE_VERSION}
    assert [n["version"] for n in json.loads((tmp_path / "notices.json").read_text())] == [
        NOTICE_VERSION
    ]


# ------------------------------------------------------------------ traits and labels
def test_weekly_rhythm_shapes_activity(tmp_path: Path) -> None:
    config = PopulationConfig(users=200, days=28, seed=6, cross_device_share=0.0)
    users = make_users(config)
    weekend: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for user in users:
        for line in user_lines(user, config):
            if line["kind"] == "event":
                local = datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
                day = local.astimezone(timezone(timedelta(hours=8))).weekday()
                weekend[user.index][day >= 5] += 1

    def expected(u: User) -> float:
        return sum(u.weekday_weights[5:]) / sum(u.weekday_weights)

    busy = [u for u in users if sum(weekend[u.index]) >= 20]
    high = [weekend[u.index][1] / sum(weekend[u.index]) for u in busy if expected(u) > 0.33]
    low = [weekend[u.index][1] / sum(weekend[u.index]) for u in busy if expected(u) < 0.25]
    assert high and low
    assert sum(high) / len(high) > sum(low) / len(low) + 0.1


def test_message_labels_cover_every_message(tmp_path: Path) -> None:
    summary = write_population(PopulationConfig(users=80, days=21, seed=8), tmp_path)
    labels = [
        json.loads(x) for x in (tmp_path / "labels" / "messages.jsonl").read_text().splitlines()
    ]
    ids = {
        json.loads(raw)["message_id"]
        for c in CHANNELS
        for raw in (tmp_path / f"{c}.jsonl").read_text(encoding="utf-8").splitlines()
        if '"kind": "message"' in raw
    }

    assert len(labels) == summary.messages == len(ids)
    assert {x["message_id"] for x in labels} == ids
    assert {x["intent"] for x in labels} == {i.value for i in Intent}
    assert {x["emotion"] for x in labels} <= {e.value for e in Emotion}
    assert {x["lang"] for x in labels} == {"zh", "en"}


def test_user_lines_match_the_written_population(tmp_path: Path) -> None:
    config = PopulationConfig(users=30, days=10, seed=12)
    write_population(config, tmp_path)
    written = sorted(
        raw
        for c in CHANNELS
        for raw in (tmp_path / f"{c}.jsonl").read_text(encoding="utf-8").splitlines()
    )

    lines = [line for user in make_users(config) for line in user_lines(user, config)]

    assert all(TRUTH_KEY not in line for line in lines)
    assert sorted(json.dumps(x, ensure_ascii=False) for x in lines) == written


def test_agent_labels_follow_the_channel_share_and_the_truth(tmp_path: Path) -> None:
    write_population(PopulationConfig(users=120, days=30, seed=3), tmp_path)
    truth = {
        x["message_id"]: x
        for x in map(json.loads, (tmp_path / "labels" / "messages.jsonl").read_text().splitlines())
    }
    by_channel: dict[str, list[dict[str, Any]]] = {c: [] for c in CHANNELS}
    for c in CHANNELS:
        for raw in (tmp_path / f"{c}.jsonl").read_text(encoding="utf-8").splitlines():
            line = json.loads(raw)
            if line["kind"] == "message":
                by_channel[c].append(line)

    desk = by_channel["desk"]
    assert desk and all("labels" in m for m in desk)
    assert all("labels" not in m for m in by_channel["sms"])
    web = by_channel["web"]
    assert 0.3 < sum("labels" in m for m in web) / len(web) < 0.7
    for lines in by_channel.values():
        for m in lines:
            if "labels" in m:
                expected = truth[m["message_id"]]
                assert m["labels"] == {k: expected[k] for k in ("intent", "emotion", "urgency")}
    assert {x["urgency"] for x in truth.values()} == {"low", "normal", "urgent"}
