"""The baseline of ``benchmarks/load.py``: plain FastAPI on the same engine and pool.

The FastAPI tutorial's shape (sync routes, a ``yield`` session dependency) over
``server.db.create_db_engine`` — the engine, pool and pragmas fedprofile itself uses — with
no authentication, consent, audit or encryption: one insert per write, one primary-key
select per read, ``SELECT 1`` for health. Served by uvicorn with the same worker count, it
shows what the pool and the framework alone cost on this machine in the same run.
"""

# No ``from __future__ import annotations``: the routes' ``Annotated`` aliases are local
# names FastAPI must resolve at definition time.
import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import create_db_engine

metadata = MetaData()
#: One row per write key; the load test counts them to find lost or duplicated writes.
plain_write = Table(
    "bench_plain_write",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("subject", String(64), nullable=False, index=True),
    Column("value", Integer, nullable=False),
)


def create_app() -> FastAPI:
    """Build the baseline app on ``FEDPROFILE_DATABASE_URL`` (uvicorn factory)."""
    engine = create_db_engine(os.environ["FEDPROFILE_DATABASE_URL"])
    metadata.create_all(engine, checkfirst=True)
    app = FastAPI()

    def session() -> Iterator[Session]:
        with Session(engine) as s:
            yield s

    SessionDep = Annotated[Session, Depends(session)]

    @app.get("/health")
    def health(s: SessionDep) -> dict[str, str]:
        s.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.put("/subjects/{subject}/value")
    def write(subject: str, key: str, value: int, s: SessionDep) -> dict[str, int]:
        try:
            s.execute(plain_write.insert().values(key=key, subject=subject, value=value))
            s.commit()
        except IntegrityError:
            s.rollback()  # a retry of a write that landed: answered, not stored twice
        return {"value": value}

    @app.get("/subjects/{subject}/value")
    def read(subject: str, s: SessionDep) -> dict[str, int]:
        row = s.execute(
            select(plain_write.c.value)
            .where(plain_write.c.subject == subject)
            .order_by(plain_write.c.value.desc())
            .limit(1)
        ).first()
        if row is None:
            raise HTTPException(404)
        return {"value": int(row[0])}

    return app
