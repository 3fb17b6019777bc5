"""The training families: federated runs, their rounds, and each edge's privacy ledger."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models import LedgerEntryWire

from .types import UTCDateTime


class RunStatus(StrEnum):
    """Lifecycle of a training run."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    BUDGET_EXHAUSTED = "budget_exhausted"


class TrainingRun(SQLModel, table=True):
    """One federated training run (table ``training_run``); ``config_json`` is JSON text."""

    __tablename__ = "training_run"

    id: str = Field(primary_key=True, max_length=36)
    model: str = Field(max_length=40, index=True)
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: RunStatus = Field(default=RunStatus.RUNNING, sa_type=String(20))
    num_rounds: int
    config_json: str = Field(default="{}", sa_type=Text)


class TrainingRound(SQLModel, table=True):
    """One aggregated train or evaluate round (table ``training_round``).

    ``metrics_json`` holds aggregated metrics; ``edges_json`` per-edge summaries (ids,
    channels, counts, epsilon), never subject data.
    """

    __tablename__ = "training_round"
    __table_args__ = (
        UniqueConstraint(
            "run_id", "server_round", "phase", name="uq_training_round_run_round_phase"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="training_run.id", max_length=36, index=True)
    server_round: int
    phase: str = Field(max_length=10)
    metrics_json: str = Field(default="{}", sa_type=Text)
    edges_json: str = Field(default="[]", sa_type=Text)


class TrainingRoundPublic(SQLModel):
    """A round as returned by the API."""

    server_round: int
    phase: str
    metrics: dict[str, float]
    edges: list[dict[str, Any]]


class TrainingRunPublic(SQLModel):
    """A run with its rounds as returned by the API."""

    id: str
    model: str
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    num_rounds: int
    config: dict[str, Any]
    rounds: list[TrainingRoundPublic]


class EdgeLedgerBase(SQLModel):
    """Ledger facts every shape shares (epsilon is cumulative over all accounted releases)."""

    edge_id: str = Field(foreign_key="edge.id", max_length=36, index=True)
    channel: str = Field(max_length=20)
    model: str = Field(max_length=40)
    epsilon: float
    delta: float
    accountant: str = Field(max_length=10)
    budget: float | None = None
    exhausted: bool = False
    reported_at: datetime = Field(sa_type=UTCDateTime)


class EdgeLedger(EdgeLedgerBase, table=True):
    """The latest ledger an edge reported for a model (table ``edge_ledger``)."""

    __tablename__ = "edge_ledger"
    __table_args__ = (UniqueConstraint("edge_id", "model", name="uq_edge_ledger_edge_model"),)

    id: int | None = Field(default=None, primary_key=True)
    entries_json: str = Field(default="[]", sa_type=Text)


class EdgeLedgerPublic(EdgeLedgerBase):
    """An edge ledger as returned by the API, entries decoded."""

    entries: list[LedgerEntryWire]
