"""The ``ExperimentOutcome`` table: contact outcomes per experiment arm, as edge aggregates.

Edges never send one person's outcome: they count their contacts per experiment, arm and
day and send the totals (n, resolved at first contact, transferred, sums and sums of squares
of first-response seconds and order value, retained after 30 days). A re-sent day replaces
the edge's earlier totals for it, so uploads are idempotent. KPIs and their intervals are
computed from these sums (:mod:`server.decisions.kpis`), and a cell below the experiment's
minimum size is reported as suppressed.
"""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class ExperimentOutcome(SQLModel, table=True):
    """One edge's totals for one arm and day (table ``experiment_outcome``)."""

    __tablename__ = "experiment_outcome"
    __table_args__ = (
        UniqueConstraint("experiment", "arm", "edge_id", "day", name="uq_experiment_outcome"),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment: str = Field(max_length=40, index=True)
    arm: str = Field(max_length=40)
    edge_id: str = Field(max_length=64)
    day: str = Field(max_length=10)
    contacts: int = Field(ge=0)
    resolved: int = Field(ge=0)
    transferred: int = Field(ge=0)
    first_response_sum: float = Field(ge=0)
    first_response_sumsq: float = Field(ge=0)
    order_value_sum: float = Field(ge=0)
    order_value_sumsq: float = Field(ge=0)
    retained: int = Field(ge=0)
    retention_known: int = Field(ge=0)
    received_at: datetime = Field(sa_type=UTCDateTime)
