from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from client.schemas import InputLine
from privacy import IdentifierKind, normalize_identifier
from simulations.synthetic import CHANNELS, PopulationConfig, make_users, write_population

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


@pytest.mark.parametrize("bad", [{"users": 0}, {"days": 3}, {"english_share": 2.0}])
def test_config_rejects_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PopulationConfig(**bad)  # type: ignore[arg-type]
