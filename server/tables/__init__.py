"""SQLModel table families, one module per aggregate.

Importing this package registers every table on ``SQLModel.metadata`` (Alembic's
``env.py`` and the tests rely on that). Other server modules import from the defining module.
"""

from . import (
    audit_checkpoint,
    audit_entry,
    consent_record,
    decision,
    dsr,
    edge,
    experiment_outcome,
    field_suppression,
    identity,
    model_version,
    notice,
    profile_field,
    restriction,
    subject,
    subject_alias,
    subject_event,
    subject_key,
    token,
    tombstone,
    training,
    upload_receipt,
)

__all__ = [
    "audit_checkpoint",
    "audit_entry",
    "consent_record",
    "decision",
    "dsr",
    "edge",
    "experiment_outcome",
    "field_suppression",
    "identity",
    "model_version",
    "notice",
    "profile_field",
    "restriction",
    "subject",
    "subject_alias",
    "subject_event",
    "subject_key",
    "token",
    "tombstone",
    "training",
    "upload_receipt",
]
