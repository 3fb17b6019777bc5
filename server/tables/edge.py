"""The ``Edge`` family: one registered edge (a channel deployment or a device)."""

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models import Channel

from .types import UTCDateTime


class EdgeBase(SQLModel):
    """Fields every edge shape shares."""

    name: str = Field(max_length=64)
    channel: Channel = Field(sa_type=String(20))


class Edge(EdgeBase, table=True):
    """A registered edge (table ``edge``)."""

    __tablename__ = "edge"
    __table_args__ = (UniqueConstraint("name", name="uq_edge_name"),)

    id: str = Field(primary_key=True, max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EdgePublic(EdgeBase):
    """An edge as shown to admins."""

    id: str
    created_at: datetime
    last_seen_at: datetime | None
