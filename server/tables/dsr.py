"""The ``DataSubjectRequest`` family: access, rectify, erase, restrict and lift requests.

One row per request, updated as it moves through the states of ``consent.RequestStatus``
(every transition is also an audit entry). ``subject`` is a plain column, not a foreign key:
a request may name a pseudonym the server never stored, and the record of an erasure must
outlive the subject. Erasure nulls ``subject`` on all of the subject's requests and drops
their proposed values; the erasure request keeps only the receipt's salted commitment
(``subject_commitment``, ``commitment_salt``), which lets the subject, and only someone
holding the pseudonym, find it again.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

from consent import Rectification, RequestState, RequestType

from .types import UTCDateTime


class DataSubjectRequestBase(SQLModel):
    """Fields every request shape shares."""

    request_type: RequestType = Field(sa_type=String(20))
    subject: str | None = Field(default=None, max_length=67, index=True)
    channel: str = Field(max_length=20)


class DataSubjectRequest(DataSubjectRequestBase, table=True):
    """A data-subject request (table ``data_subject_request``).

    ``approvals_json`` holds ``[{"officer", "at"}]``; ``rectification_json`` the proposed
    ``consent.Rectification`` (value replaced by its SHA-256 once the request is final);
    ``result_json`` the evidence of completion (counts, hashes, the signed erasure receipt).
    """

    __tablename__ = "data_subject_request"

    id: str = Field(primary_key=True, max_length=36)
    state: RequestState = Field(sa_type=String(20), index=True)
    received_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=64)
    created_role: str = Field(max_length=20)
    approvals_json: str = Field(default="[]", sa_type=Text)
    rejection_reason: str | None = Field(default=None, max_length=500)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rectification_json: str | None = Field(default=None, sa_type=Text)
    result_json: str = Field(default="{}", sa_type=Text)
    subject_commitment: str | None = Field(default=None, max_length=64)
    commitment_salt: str | None = Field(default=None, max_length=32)


class DataSubjectRequestCreate(BaseModel):
    """Body of ``POST /api/v1/dsr``.

    Parameters
    ----------
    subject : str
        The pseudonym the request is about (a subject may only name their own).
    request_type : RequestType
        What is asked.
    channel : str or None
        Where an officer received it (``desk``, ``email``...); subjects' own requests are
        recorded as ``self-service``.
    rectification : Rectification or None
        Required for ``rectify``, refused otherwise.
    """

    subject: str = PydanticField(pattern=r"^ps_[0-9a-f]{64}$")
    request_type: RequestType
    channel: str | None = PydanticField(default=None, min_length=1, max_length=20)
    rectification: Rectification | None = None


class ApprovalPublic(BaseModel):
    """One approval as shown to officers."""

    officer: str
    at: datetime


class DataSubjectRequestPublic(DataSubjectRequestBase):
    """A request as returned by the API (no commitment salt)."""

    id: str
    state: RequestState
    received_at: datetime
    due_at: datetime
    updated_at: datetime
    overdue: bool
    approvals: list[ApprovalPublic]
    approvals_required: int
    rejection_reason: str | None
    started_at: datetime | None
    completed_at: datetime | None
    rectification: dict[str, Any] | None
    result: dict[str, Any]
