from __future__ import annotations

from pathlib import Path

import pytest

from server.db import create_db_engine
from server.errors import DatabaseError


def test_create_db_engine_sqlite_file_enables_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "server.sqlite"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            foreign_keys = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
    finally:
        engine.dispose()
    assert (journal, foreign_keys) == ("wal", 1)
    assert path.parent.is_dir()


def test_create_db_engine_memory_shares_one_connection() -> None:
    engine = create_db_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_create_db_engine_unsupported_url_raises_database_error(url: str) -> None:
    with pytest.raises(DatabaseError):
        create_db_engine(url)
