"""Factories for server tests: pseudonyms, consent events, uploads, a fake clock, tokens."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from consent import ConsentEvent, ConsentStatus, Purpose
from models import BatchUploadItem, ProfileFieldIn, ProfileUpload
from server.audit.record import AuditRecord

#: Long random-looking secrets accepted by ServerSettings (test-only values).
ENROLLMENT_TOKEN = "enroll-3f9a2c7d1e5b4a6f8c0d2e4f"
#: A production controller identity (named on signed receipts).
CONTROLLER = {"controller_name": "示例科技有限公司", "controller_email": "dpo@example.com"}
ADMIN_TOKEN = "admin-7c1e9b3d5f2a4c6e8a0b1d3f"
AGENT_TOKEN = "agent-2b8d4f6a1c3e5b7d9f0a2c4e"

#: Start of every test's timeline.
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def make_pseudonym(seed: str) -> str:
    """Return a well-formed pseudonym derived from ``seed`` (not from any real identifier)."""
    return "ps_" + hashlib.sha256(seed.encode()).hexdigest()


class FakeClock:
    """A settable clock: ``clock()`` returns ``now``; ``advance`` moves it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


def make_consent_event(
    subject: str,
    purpose: Purpose = Purpose.PERSONALIZED_SERVICE,
    *,
    status: ConsentStatus = ConsentStatus.GRANTED,
    occurred_at: datetime = T0 - timedelta(days=1),
    separate: bool = False,
    expires_at: datetime | None = None,
    notice_version: str = "2026-11",
    channel: str = "web",
) -> ConsentEvent:
    """Return a consent event for ``subject`` (granted a day before ``T0`` by default)."""
    return ConsentEvent(
        subject=subject,
        purpose=purpose,
        status=status,
        occurred_at=occurred_at,
        notice_version=notice_version,
        channel=channel,
        separate=separate,
        expires_at=expires_at,
    )


def make_field(
    name: str = "tag.high_purchasing_power",
    value: bool | int | float | str = True,
    *,
    computed_at: datetime = T0 - timedelta(hours=1),
    confidence: float | None = 0.8,
) -> ProfileFieldIn:
    """Return an uploaded profile field (a valid tag by default)."""
    return ProfileFieldIn(name=name, value=value, confidence=confidence, computed_at=computed_at)


def make_upload(
    purpose: str = "personalized_service",
    fields: Sequence[ProfileFieldIn] | None = None,
) -> ProfileUpload:
    """Return an upload; default: two normal fields allowed for personalized_service."""
    if fields is None:
        fields = [
            make_field("tag.high_purchasing_power", True),
            make_field("feature.recency_days", 12),
        ]
    return ProfileUpload(purpose=purpose, fields=list(fields))


def make_item(subject: str, key: str, upload: ProfileUpload | None = None) -> BatchUploadItem:
    """Return a batch item (``key`` needs 8+ characters; default upload: ``make_upload()``)."""
    return BatchUploadItem(subject=subject, idempotency_key=key, upload=upload or make_upload())


def as_json(model: Any) -> Any:
    """Return a pydantic model (or list of them) in JSON-ready form for the test client."""
    if isinstance(model, list):
        return [m.model_dump(mode="json") for m in model]
    return model.model_dump(mode="json")


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class RecordedEntry:
    """One entry captured by ``RecordingAuditSink``."""

    actor: str
    role: str
    action: str
    purpose: str | None
    subject: str | None
    outcome: str
    detail: Mapping[str, object]
    at: datetime


@dataclass
class RecordingAuditSink:
    """Test double of ``AuditSink`` that keeps entries in memory."""

    entries: list[RecordedEntry] = field(default_factory=list)

    def record(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        purpose: str | None,
        subject: str | None,
        outcome: str,
        detail: Mapping[str, object],
        at: datetime,
    ) -> None:
        self.entries.append(
            RecordedEntry(actor, role, action, purpose, subject, outcome, dict(detail), at)
        )

    def record_many(self, records: Sequence[AuditRecord]) -> None:
        for r in records:
            self.record(
                actor=r.actor,
                role=r.role,
                action=r.action,
                purpose=r.purpose,
                subject=r.subject,
                outcome=r.outcome,
                detail=r.detail,
                at=r.at,
            )
