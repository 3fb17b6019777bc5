"""Batch answers: each item gets the status and body its single request would get."""

from __future__ import annotations

import pytest

from consent import PurposeNotRegisteredError
from models import UploadResult
from server.api.batch import batch_response
from server.crud.upload import UploadOutcome
from server.errors import ConsentRefusedError, IdempotencyConflictError, Refusal

from ..factories import make_item, make_pseudonym

SUBJECT = make_pseudonym("batch-response")
ITEMS = [make_item(SUBJECT, f"key-{n:04d}") for n in range(4)]


def test_batch_response_maps_each_outcome_in_order() -> None:
    refusal = Refusal("tag.churn_risk", "no_consent_for_purpose", "tag.churn_risk: no consent")
    outcomes = [
        UploadOutcome(result=UploadResult(subject=SUBJECT, purpose="marketing", stored=["a"])),
        UploadOutcome(error=ConsentRefusedError(refused=[refusal], total=2)),
        UploadOutcome(error=IdempotencyConflictError()),
        UploadOutcome(error=PurposeNotRegisteredError("upselling", known=["marketing"])),
    ]
    results = batch_response(ITEMS, outcomes).results
    assert [(r.idempotency_key, r.status) for r in results] == [
        ("key-0000", 200), ("key-0001", 403), ("key-0002", 409), ("key-0003", 422)]
    assert results[0].result is not None and results[0].error is None
    assert [r.error.error for r in results[1:] if r.error] == [
        "consent_refused", "idempotency_conflict", "purpose_not_registered"]
    assert results[1].error is not None
    assert [(f.field, f.reason) for f in results[1].error.refused] == [
        ("tag.churn_risk", "no_consent_for_purpose")]


def test_batch_response_length_mismatch_is_value_error() -> None:
    with pytest.raises(ValueError):
        batch_response(ITEMS, [])
