"""Consent receipts: Kantara CR v1.1 fields, DPV statuses, separate consent, no identifiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consent import (
    ConsentEvent,
    ConsentStatus,
    PIIController,
    Purpose,
    build_consent_receipt,
    load_default_catalogue,
    load_default_purposes,
    receipt_id,
)

SUBJECT = "ps_" + "2" * 64
T0 = datetime(2026, 11, 1, tzinfo=UTC)
CONTROLLER = PIIController(
    name="Example Ltd", contact="DPO", address="Shanghai", email="dpo@example.com", phone="1"
)


def _event(status: ConsentStatus, minutes: int, *, separate: bool = False) -> ConsentEvent:
    return ConsentEvent(
        subject=SUBJECT,
        purpose=Purpose.RISK_CONTROL,
        status=status,
        occurred_at=T0 + timedelta(minutes=minutes),
        notice_version="v1",
        channel="app",
        separate=separate,
    )


def _receipt(event: ConsentEvent, history: list[ConsentEvent]) -> dict:  # type: ignore[type-arg]
    return build_consent_receipt(
        event=event,
        event_hash="a" * 64,
        history=history,
        catalogue=load_default_catalogue(),
        purposes=load_default_purposes(),
        controller=CONTROLLER,
        policy_url="https://example.com/privacy",
    )


def test_receipt_carries_the_kantara_required_fields() -> None:
    event = _event(ConsentStatus.GRANTED, 0, separate=True)
    receipt = _receipt(event, [event])
    for key in (
        "version",
        "jurisdiction",
        "consentTimestamp",
        "collectionMethod",
        "consentReceiptID",
        "piiPrincipalId",
        "piiControllers",
        "policyUrl",
        "services",
        "sensitive",
        "spiCat",
    ):
        assert key in receipt
    assert receipt["consentReceiptID"] == receipt_id("a" * 64)
    purpose = receipt["services"][0]["purposes"][0]
    assert purpose["consentType"] == "SEPARATE"
    assert purpose["purposeCategory"] == ["https://w3id.org/dpv#FraudPreventionAndDetection"]
    assert receipt["sensitive"] is True and receipt["spiCat"] == ["user.financial.risk"]


def test_general_grant_does_not_cover_sensitive_categories() -> None:
    event = _event(ConsentStatus.GRANTED, 0)
    receipt = _receipt(event, [event])
    assert receipt["sensitive"] is False and receipt["spiCat"] == []
    assert receipt["services"][0]["purposes"][0]["piiCategory"] == []


def test_renewed_and_withdrawn_statuses_use_dpv_terms_and_history() -> None:
    first = _event(ConsentStatus.GRANTED, 0)
    withdrawn = _event(ConsentStatus.WITHDRAWN, 5)
    renewed = _event(ConsentStatus.GRANTED, 9)
    history = [first, withdrawn, renewed]
    assert _receipt(withdrawn, history)["dpvStatus"] == "dpv:ConsentWithdrawn"
    receipt = _receipt(renewed, history)
    assert receipt["dpvStatus"] == "dpv:RenewedConsentGiven"
    assert [h["status"] for h in receipt["statusHistory"]] == ["granted", "withdrawn", "granted"]
