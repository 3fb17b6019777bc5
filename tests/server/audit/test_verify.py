"""The verification core's vocabulary, and the whole path on PostgreSQL as on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from privacy import SigningKey
from server.audit.append import append_entries
from server.audit.checkpoint import CheckpointPolicy
from server.audit.export import EXPORT_PROBLEM_HELP, ExportProblem, export_range, verify_export
from server.audit.log import iter_entry_rows, verify_chain
from server.audit.query import EntryFilter, list_entries
from server.audit.verify import PROBLEM_HELP, ChainProblem
from server.db import create_db_engine, upgrade_database

from ..factories import T0
from .conftest import make_records


def test_every_problem_code_has_help_text() -> None:
    assert set(PROBLEM_HELP) == set(ChainProblem)
    assert set(EXPORT_PROBLEM_HELP) == set(ExportProblem)
    assert all(text.strip() for text in [*PROBLEM_HELP.values(), *EXPORT_PROBLEM_HELP.values()])


@pytest.fixture()
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('verify') / 'log.sqlite'}"
    upgrade_database(url)
    built = create_db_engine(url)
    try:
        yield built
    finally:
        built.dispose()


@pytest.mark.parametrize(
    "engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_append_verify_list_export_and_tamper_on_each_backend(engine: Engine) -> None:
    key = SigningKey.generate()
    policy = CheckpointPolicy(key=key, every=8, clock=lambda: T0)
    with Session(engine) as session:
        append_entries(session=session, records=make_records(30), checkpoints=policy)
        session.commit()
        report = verify_chain(session=session, trusted_keys=[key.verify_key], checkpoint_every=8)
        rows = list(iter_entry_rows(session=session, first=5, last=9, batch_size=2))
        page = list_entries(session=session, filters=EntryFilter(action="profile.read"), limit=3)
        export = export_range(session=session, first=4, last=20, policy=policy)
        session.commit()
    assert report.ok and report.entries == 30 and report.checkpoints == 3
    assert [r[0] for r in rows] == [5, 6, 7, 8, 9]
    assert [e.seq for e in page.items] == [30, 26, 22] and page.next_cursor == 22
    assert verify_export(export, public_key=key.verify_key).ok
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET purpose = 'analytics' WHERE seq = 17"))
    with Session(engine) as session:
        broken = verify_chain(session=session, trusted_keys=[key.verify_key])
    assert (broken.ok, broken.first_bad_seq, broken.reason) == (
        False, 17, ChainProblem.ENTRY_HASH_MISMATCH,
    )  # fmt: skip
