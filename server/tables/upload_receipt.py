"""The ``UploadReceipt`` table: idempotency records of accepted profile uploads.

One row per (edge, idempotency key): the hash of the request and the response that was sent,
so a retry with the same key and body gets the same answer and stores nothing twice.
"""

from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class UploadReceipt(SQLModel, table=True):
    """An accepted upload's idempotency record (table ``upload_receipt``)."""

    __tablename__ = "upload_receipt"
    __table_args__ = (
        UniqueConstraint("edge_id", "idempotency_key", name="uq_upload_receipt_edge_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    edge_id: str = Field(foreign_key="edge.id", max_length=36)
    idempotency_key: str = Field(max_length=128)
    request_hash: str = Field(max_length=64)
    response_json: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
