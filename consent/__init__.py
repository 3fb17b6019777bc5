"""Consent room: purposes, the field catalogue, notices, consent records, receipts, the policy.

A leaf room: it imports no other fedprofile room and reads no settings. ``DPV_TERMS`` and
``LABELS`` are derived from the shipped purpose list (``consent/data/purposes.yaml``) on first
use.
"""

import logging
from typing import Any

from .catalogue import (
    FieldCatalogue,
    FieldSpec,
    LegalBasis,
    MergeRule,
    Sensitivity,
    ValueType,
    load_default_catalogue,
)
from .dsr import (
    DEFAULT_DUE_DAYS,
    Approval,
    DSRTransitionError,
    Rectification,
    RequestAction,
    RequestState,
    RequestStatus,
    RequestType,
    SubjectEventKind,
    SubjectEventPage,
    SubjectEventWire,
    advance,
    due_date,
    erasure_hash,
    required_approvals,
)
from .errors import (
    CatalogueError,
    ConsentError,
    FieldNotCataloguedError,
    NoticeError,
    PurposeListError,
    PurposeNotRegisteredError,
)
from .notices import NOTICE_VERSION_PATTERN, Notice, NoticeDraft, NoticeRegistry
from .policy import Decision, DecisionReason, evaluate
from .purpose_registry import (
    PurposeRegistry,
    PurposeSpec,
    check_consent_data,
    load_default_purposes,
)
from .purposes import Purpose, parse_purpose
from .receipts import PIIController, build_consent_receipt, receipt_id
from .records import PSEUDONYM_PATTERN, ConsentEvent, ConsentState, ConsentStatus, most_restrictive

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Approval",
    "CatalogueError",
    "ConsentError",
    "ConsentEvent",
    "ConsentState",
    "ConsentStatus",
    "DEFAULT_DUE_DAYS",
    "DPV_TERMS",
    "DSRTransitionError",
    "Decision",
    "DecisionReason",
    "FieldCatalogue",
    "FieldNotCataloguedError",
    "FieldSpec",
    "LABELS",
    "LegalBasis",
    "MergeRule",
    "NOTICE_VERSION_PATTERN",
    "Notice",
    "NoticeDraft",
    "NoticeError",
    "NoticeRegistry",
    "PIIController",
    "PSEUDONYM_PATTERN",
    "Purpose",
    "PurposeListError",
    "PurposeNotRegisteredError",
    "PurposeRegistry",
    "PurposeSpec",
    "Rectification",
    "RequestAction",
    "RequestState",
    "RequestStatus",
    "RequestType",
    "Sensitivity",
    "SubjectEventKind",
    "SubjectEventPage",
    "SubjectEventWire",
    "ValueType",
    "advance",
    "build_consent_receipt",
    "check_consent_data",
    "due_date",
    "erasure_hash",
    "evaluate",
    "load_default_catalogue",
    "load_default_purposes",
    "most_restrictive",
    "parse_purpose",
    "receipt_id",
    "required_approvals",
]


def __getattr__(name: str) -> Any:
    """Derive ``DPV_TERMS`` and ``LABELS`` from the shipped purpose list on first use."""
    if name == "DPV_TERMS":
        return load_default_purposes().dpv_terms
    if name == "LABELS":
        return load_default_purposes().labels
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
