"""Shared test configuration: Flower never phones home, PostgreSQL fixture, temp dirs."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

import pytest

# A privacy product does not phone home, in tests either (set before flwr is imported).
os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"
os.environ["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] = "1"
os.environ.setdefault("FLWR_HOME", tempfile.mkdtemp(prefix="fedprofile-flwr-home-"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

POSTGRES_BASE_URL = os.environ.get(
    "FEDPROFILE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reachable() -> bool:
    try:
        import psycopg

        dsn = POSTGRES_BASE_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    return _postgres_reachable()


@pytest.fixture()
def postgres_url(postgres_available: bool) -> Iterator[str]:
    """A PostgreSQL URL whose ``search_path`` is a fresh schema, dropped afterwards.

    Skips only when the server at 127.0.0.1:5432 is unreachable.
    """
    if not postgres_available:
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is unreachable")
    import psycopg

    schema = f"fp_test_{uuid.uuid4().hex[:12]}"
    dsn = POSTGRES_BASE_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_BASE_URL else "?"
    try:
        yield f"{POSTGRES_BASE_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
