"""Filtered, keyset-paginated listings of entries and checkpoints."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from privacy import SigningKey, verify_signed
from server.audit.append import append_entries
from server.audit.checkpoint import CheckpointPolicy
from server.audit.query import EntryFilter, checkpoint_page, list_entries

from ..factories import T0, make_pseudonym
from .conftest import make_records

KEY = SigningKey.generate()


@pytest.fixture()
def log(db_session: Session) -> Session:
    policy = CheckpointPolicy(key=KEY, every=10, clock=lambda: T0)
    append_entries(session=db_session, records=make_records(60), checkpoints=policy)
    db_session.commit()
    return db_session


def _all_pages(session: Session, filters: EntryFilter, limit: int, order: str) -> list[int]:
    seen: list[int] = []
    cursor = None
    while True:
        page = list_entries(session=session, filters=filters, cursor=cursor, limit=limit,
                            order=order)  # type: ignore[arg-type]  # fmt: skip
        seen += [entry.seq for entry in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_list_entries_pages_cover_each_entry_once_in_order(log: Session, order: str) -> None:
    seen = _all_pages(log, EntryFilter(), 7, order)
    assert seen == (list(range(60, 0, -1)) if order == "desc" else list(range(1, 61)))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (EntryFilter(action="consent.record"), [i + 1 for i in range(60) if i % 4 == 2]),
        (EntryFilter(purpose="marketing", actor="edge:e0"),
         [i + 1 for i in range(60) if i % 4 == 0 and i % 3 == 0]),
        (EntryFilter(seq_from=5, seq_to=9), [5, 6, 7, 8, 9]),
        (EntryFilter(at_from=T0 + timedelta(seconds=10), at_to=T0 + timedelta(seconds=13)),
         [11, 12, 13]),
        (EntryFilter(subject=make_pseudonym("subject-1")),
         [i + 1 for i in range(60) if i % 3 and i % 17 == 1]),
    ],
    ids=["action", "purpose+actor", "seq-range", "time-range", "subject"],
)  # fmt: skip
def test_list_entries_filters_select_exactly_the_matching_entries(
    log: Session, filters: EntryFilter, expected: list[int]
) -> None:
    assert sorted(_all_pages(log, filters, 4, "asc")) == expected


def test_list_entries_never_shows_pseudonyms_or_salts(log: Session) -> None:
    page = list_entries(session=log, filters=EntryFilter(), limit=60)
    dumped = page.model_dump_json()
    assert "ps_" not in dumped and "subject_salt" not in dumped and "subject_ref" not in dumped
    assert any(entry.subject_commitment for entry in page.items)


def test_list_entries_subject_filter_misses_erased_references(log: Session) -> None:
    subject = make_pseudonym("subject-1")
    log.connection().execute(
        text(
            "UPDATE audit_entry SET subject_ref = NULL, subject_salt = NULL WHERE subject_ref = :s"
        ),
        {"s": subject},
    )
    log.commit()
    assert list_entries(session=log, filters=EntryFilter(subject=subject)).items == []


@pytest.mark.parametrize("limit", [0, 1001])
def test_list_entries_bad_limit_raises_value_error(log: Session, limit: int) -> None:
    with pytest.raises(ValueError):
        list_entries(session=log, filters=EntryFilter(), limit=limit)


def test_list_entries_naive_time_bound_raises_value_error(log: Session) -> None:
    with pytest.raises(ValueError):
        list_entries(session=log, filters=EntryFilter(at_from=T0.replace(tzinfo=None)))


def test_checkpoint_page_newest_first_with_verifiable_envelopes(log: Session) -> None:
    first = checkpoint_page(session=log, limit=4)
    rest = checkpoint_page(session=log, limit=4, before_size=first.next_before_size)
    sizes = [c.checkpoint.size for c in first.items + rest.items]
    assert sizes == [60, 50, 40, 30, 20, 10] and rest.next_before_size is None
    for item in first.items:
        verify_signed(item.envelope, trusted=KEY.verify_key)
