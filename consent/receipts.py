"""Consent receipts: the Kantara CR v1.1 / ISO/IEC TS 27560 document of one consent event.

A receipt is what the subject keeps as evidence of one consent transaction: who the controller
is, which notice was shown, which purpose (with its DPV term), which data categories it covers
(from the field catalogue), whether it was a separate consent for sensitive data (PIPL Art.
29), how it ends (withdrawal, expiry, retention) and the status history of that purpose up to
the event. This module only *builds* the JSON document (a leaf room does not sign); the server
signs it with its Ed25519 key so anyone holding the public key can check it offline.

The subject is named by pseudonym only (``piiPrincipalId``); no raw identifier is ever in a
receipt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .catalogue import FieldCatalogue, Sensitivity
from .notices import Notice
from .purpose_registry import PurposeRegistry
from .records import ConsentEvent, ConsentStatus

#: Kantara Consent Receipt specification version the document follows.
RECEIPT_VERSION = "KI-CR-v1.1.0"
#: Namespace of receipt ids: ``uuid5(RECEIPT_NAMESPACE, event_hash)``, stable per event.
RECEIPT_NAMESPACE = uuid.UUID("6f1d3c2a-8b4e-5d7f-9a10-2c3e4f5a6b7c")

#: DPV consent-status terms of each status (DPV distinguishes withdrawn from revoked).
DPV_STATUS: dict[ConsentStatus, str] = {
    ConsentStatus.GRANTED: "dpv:ConsentGiven",
    ConsentStatus.WITHDRAWN: "dpv:ConsentWithdrawn",
    ConsentStatus.REVOKED: "dpv:ConsentRevoked",
    ConsentStatus.EXPIRED: "dpv:ConsentExpired",
}
#: DPV term of a grant that follows an earlier grant of the same purpose.
DPV_RENEWED = "dpv:RenewedConsentGiven"


class PIIController(BaseModel):
    """The controller named on receipts (Kantara ``piiControllers[]``).

    Parameters
    ----------
    name : str
        Legal name of the controller.
    contact : str
        Contact person or office (e.g. the personal-information protection officer).
    address : str
        Postal address.
    email : str
        Contact e-mail.
    phone : str
        Contact phone.
    url : str or None
        Controller's web page.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    contact: str = Field(min_length=1)
    address: str = Field(min_length=1)
    email: str = Field(min_length=1)
    phone: str = Field(min_length=1)
    url: str | None = None

    def to_receipt(self) -> dict[str, Any]:
        """Return the Kantara ``piiControllers[]`` entry."""
        entry: dict[str, Any] = {
            "piiController": self.name,
            "onBehalf": False,
            "contact": self.contact,
            "address": self.address,
            "email": self.email,
            "phone": self.phone,
        }
        if self.url is not None:
            entry["piiControllerUrl"] = self.url
        return entry


def receipt_id(event_hash: str) -> str:
    """Return the receipt id of the event whose canonical hash is ``event_hash``.

    Parameters
    ----------
    event_hash : str
        Hex SHA-256 of the canonical event (the server's ``consent_record.event_hash``).

    Returns
    -------
    str
        A UUID (version 5): the same event always gets the same receipt id.
    """
    return str(uuid.uuid5(RECEIPT_NAMESPACE, event_hash))


def _iso(event: ConsentEvent) -> str:
    """Return the event time in ISO 8601 (UTC offset kept)."""
    return event.occurred_at.isoformat()


def _history(event: ConsentEvent, history: Sequence[ConsentEvent]) -> list[dict[str, Any]]:
    """Return the purpose's events up to and including ``event``, oldest first."""
    rows = [
        e for e in history if e.purpose is event.purpose and e.occurred_at <= event.occurred_at
    ]
    if event not in rows:
        rows.append(event)
    return [
        {
            "status": e.status.value,
            "dpvStatus": DPV_STATUS[e.status],
            "timestamp": _iso(e),
            "noticeVersion": e.notice_version,
            "collectionMethod": e.channel,
            "separate": e.separate,
        }
        for e in sorted(rows, key=lambda e: e.occurred_at)
    ]


def build_consent_receipt(
    *,
    event: ConsentEvent,
    event_hash: str,
    history: Sequence[ConsentEvent],
    catalogue: FieldCatalogue,
    purposes: PurposeRegistry,
    controller: PIIController,
    notice: Notice | None = None,
    policy_url: str | None = None,
    jurisdiction: str = "CN",
    service: str = "fedprofile customer service",
) -> dict[str, Any]:
    """Return the receipt document of one consent event (unsigned, JSON-ready).

    Parameters
    ----------
    event : ConsentEvent
        The consent event the receipt is for.
    event_hash : str
        Its canonical hash (the receipt id is derived from it).
    history : Sequence[ConsentEvent]
        The subject's events (any purposes, any order); the receipt lists those of the same
        purpose up to ``event``.
    catalogue : FieldCatalogue
        The field catalogue: data categories, sensitivity and retention of the purpose.
    purposes : PurposeRegistry
        The purpose list: DPV term, labels, legal basis, necessity.
    controller : PIIController
        The controller named on the receipt.
    notice : Notice or None
        The published notice named by ``event.notice_version``, if the server knows it.
    policy_url : str or None
        Privacy-policy URL used when ``notice`` is None.
    jurisdiction : str
        ISO 3166 code of the jurisdiction (``CN``: PIPL).
    service : str
        Name of the service the purpose belongs to.

    Returns
    -------
    dict[str, Any]
        Kantara CR v1.1 fields (``version``, ``jurisdiction``, ``consentTimestamp``,
        ``collectionMethod``, ``consentReceiptID``, ``language``, ``piiPrincipalId``,
        ``piiControllers``, ``policyUrl``, ``services``, ``sensitive``, ``spiCat``) plus
        ``legalFramework``, ``noticeVersion``, ``status``, ``dpvStatus``, ``expiresAt``,
        ``evidenceHash``, ``eventHash`` and ``statusHistory``.
    """
    spec = purposes.get(event.purpose)
    fields = catalogue.fields_for(event.purpose)
    sensitive_fields = [f for f in fields if f.sensitivity is Sensitivity.SENSITIVE]
    # Sensitive data is processed for the purpose only under a separate grant (PIPL Art. 29).
    covers_sensitive = event.status is ConsentStatus.GRANTED and event.separate
    spi = sorted({f.category for f in sensitive_fields}) if covers_sensitive else []
    pii = sorted(
        {f.category for f in fields if covers_sensitive or f.sensitivity is Sensitivity.NORMAL}
    )
    retention = max((f.retention_days for f in fields), default=0)
    earlier_grants = [
        e
        for e in history
        if e.purpose is event.purpose
        and e.status is ConsentStatus.GRANTED
        and e.occurred_at < event.occurred_at
    ]
    dpv_status = DPV_STATUS[event.status]
    if event.status is ConsentStatus.GRANTED and earlier_grants:
        dpv_status = DPV_RENEWED
    termination = (
        "on withdrawal by the subject, revocation, "
        + (f"expiry at {event.expires_at.isoformat()}, " if event.expires_at else "")
        + f"and in any case each field is deleted at most {retention} days after it was computed"
    )
    return {
        "version": RECEIPT_VERSION,
        "jurisdiction": jurisdiction,
        "legalFramework": "PIPL" if jurisdiction == "CN" else None,
        "consentTimestamp": int(event.occurred_at.timestamp()),
        "collectionMethod": event.channel,
        "consentReceiptID": receipt_id(event_hash),
        "language": notice.language if notice is not None else "zh-CN",
        "piiPrincipalId": event.subject,
        "piiControllers": [controller.to_receipt()],
        "policyUrl": notice.url if notice is not None else policy_url,
        "noticeVersion": event.notice_version,
        "noticeContentHash": None if notice is None else notice.content_hash,
        "services": [
            {
                "service": service,
                "purposes": [
                    {
                        "purpose": event.purpose.value,
                        "purposeLabel": {"zh": spec.label_zh, "en": spec.label_en},
                        "purposeDescription": {
                            "zh": spec.description_zh,
                            "en": spec.description_en,
                        },
                        "consentType": "SEPARATE" if event.separate else "EXPLICIT",
                        "purposeCategory": [spec.dpv],
                        "piiCategory": pii,
                        "primaryPurpose": spec.necessary,
                        "legalBasis": spec.legal_basis.value,
                        "termination": termination,
                        "thirdPartyDisclosure": False,
                    }
                ],
            }
        ],
        "sensitive": bool(spi),
        "spiCat": spi,
        "status": event.status.value,
        "dpvStatus": dpv_status,
        "timestamp": _iso(event),
        "expiresAt": None if event.expires_at is None else event.expires_at.isoformat(),
        "evidenceHash": event.evidence_hash,
        "eventHash": event_hash,
        "statusHistory": _history(event, history),
    }
