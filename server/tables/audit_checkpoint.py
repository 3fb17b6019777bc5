"""The ``AuditCheckpoint`` family: signed statements of the audit log's size and hashes.

A checkpoint says "the log had ``size`` entries, the last one hashing to ``head_hash``, and
the RFC 9162 Merkle tree of their entry hashes has root ``root_hash``", at time ``at``, signed
with the server's Ed25519 key. Anyone holding the public key can check it offline; a log
rewritten after a checkpoint no longer matches it. ``frontier_json`` (the perfect-subtree
roots of the first ``size`` leaves) lets the next checkpoint extend the tree without rereading
the log; it is derived data and not signed.
"""

from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class AuditCheckpointBase(SQLModel):
    """The signed fields of a checkpoint, and the id of the key that signed them."""

    size: int = Field(ge=0)
    at: datetime = Field(sa_type=UTCDateTime)
    origin: str = Field(max_length=64)
    head_hash: str = Field(max_length=64)
    root_hash: str = Field(max_length=64)
    key_id: str = Field(max_length=16)


class AuditCheckpoint(AuditCheckpointBase, table=True):
    """One signed checkpoint (table ``audit_checkpoint``); sizes grow with ``id``."""

    __tablename__ = "audit_checkpoint"
    __table_args__ = (UniqueConstraint("size", name="uq_audit_checkpoint_size"),)

    id: int | None = Field(default=None, primary_key=True)
    public_key: str = Field(max_length=64)
    signature: str = Field(max_length=128)
    frontier_json: str = Field(default="[]", sa_type=Text)


class AuditCheckpointPublic(AuditCheckpointBase):
    """A checkpoint as listed to officers (the signed envelope is served separately)."""

    id: int
