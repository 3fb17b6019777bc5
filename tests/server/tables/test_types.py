from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError
from sqlmodel import Session

from server.tables.subject import Subject

from ..factories import make_pseudonym


def test_utc_datetime_round_trip_returns_aware_utc(db_session: Session) -> None:
    beijing = datetime(2026, 11, 20, 17, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    pseudonym = make_pseudonym("types")
    db_session.add(Subject(pseudonym=pseudonym, first_seen_at=beijing, last_seen_at=beijing))
    db_session.commit()
    db_session.expunge_all()
    row = db_session.get(Subject, pseudonym)
    assert row is not None
    assert row.first_seen_at == beijing and row.first_seen_at.tzinfo is UTC


def test_utc_datetime_naive_value_is_refused(db_session: Session) -> None:
    naive = datetime(2026, 11, 20, 9, 0)
    db_session.add(Subject(pseudonym=make_pseudonym("n"), first_seen_at=naive, last_seen_at=naive))
    with pytest.raises(StatementError):
        db_session.commit()
