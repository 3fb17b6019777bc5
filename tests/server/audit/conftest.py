"""Fixtures of the audit tests: a signed 1,000-entry log in a SQLite file, built once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

import server.tables  # noqa: F401
from privacy import SigningKey
from server.audit.append import append_entries
from server.audit.checkpoint import CheckpointPolicy, all_checkpoints
from server.audit.log import iter_entry_rows, read_head
from server.audit.record import AuditRecord
from server.db import create_db_engine, upgrade_database
from server.tables.audit_checkpoint import AuditCheckpoint

from ..factories import T0, make_pseudonym

#: Size of the shared log and its checkpoint interval.
LOG_SIZE = 1000
EVERY = 100
ACTIONS = ("profile.write", "profile.read", "consent.record", "ledger.report")
PURPOSES = ("marketing", "personalized_service", None, "service_routing")


def make_records(n: int, *, start: int = 0) -> list[AuditRecord]:
    """Varied records: four actions, three purposes and no purpose, every third without subject."""
    return [
        AuditRecord(
            actor=f"edge:e{i % 3}",
            role="edge",
            action=ACTIONS[i % 4],
            purpose=PURPOSES[i % 4],
            subject=None if i % 3 == 0 else make_pseudonym(f"subject-{i % 17}"),
            outcome="accepted" if i % 5 else "refused",
            detail={"n": i, "名": "画像"},
            at=T0 + timedelta(seconds=i),
        )  # fmt: skip
        for i in range(start, start + n)
    ]


@dataclass(frozen=True)
class SignedLog:
    """A built log: its engine, key, policy and an in-memory copy of rows and checkpoints."""

    engine: Engine
    key: SigningKey
    policy: CheckpointPolicy
    rows: list[tuple[Any, ...]]
    checkpoints: list[AuditCheckpoint]
    head: tuple[int, str]


@pytest.fixture(scope="module")
def signed_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedLog]:
    """A 1,000-entry log with a checkpoint every 100 entries, in a SQLite file (read-only use)."""
    path: Path = tmp_path_factory.mktemp("audit") / "log.sqlite"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    engine = create_db_engine(url)
    key = SigningKey.generate()
    policy = CheckpointPolicy(key=key, every=EVERY, clock=lambda: T0)
    records = make_records(LOG_SIZE)
    with Session(engine, expire_on_commit=False) as session:
        for start in range(0, LOG_SIZE, 250):  # uneven against EVERY on purpose
            append_entries(
                session=session, records=records[start : start + 250], checkpoints=policy
            )
            session.commit()
        rows = list(iter_entry_rows(session=session))
        checkpoints = list(all_checkpoints(session=session))
        head = read_head(session=session)
    try:
        yield SignedLog(engine, key, policy, rows, checkpoints, head)
    finally:
        engine.dispose()
