"""Per-item answers of the batch upload route: each item's status and body as if sent alone."""

from __future__ import annotations

from collections.abc import Sequence

from models import BatchItemError, BatchItemResult, BatchUploadItem, BatchUploadResponse

from ..crud.upload import UploadOutcome
from .errors import describe_error


def batch_response(
    items: Sequence[BatchUploadItem], outcomes: Sequence[UploadOutcome]
) -> BatchUploadResponse:
    """Return the batch answer: one result per item, in request order.

    Parameters
    ----------
    items : Sequence[BatchUploadItem]
        The request's items.
    outcomes : Sequence[UploadOutcome]
        Their outcomes, in the same order.

    Returns
    -------
    BatchUploadResponse
        ``status`` 200 with the ``UploadResult`` for stored and replayed items; otherwise the
        status and error body the single ``PUT`` would have answered (403 with ``refused``,
        409, 422).

    Raises
    ------
    ValueError
        If the two sequences differ in length.
    """
    results: list[BatchItemResult] = []
    for item, outcome in zip(items, outcomes, strict=True):
        if outcome.error is None:
            results.append(
                BatchItemResult(
                    subject=item.subject,
                    idempotency_key=item.idempotency_key,
                    status=200,
                    result=outcome.unwrap(),
                )
            )
            continue
        status, body = describe_error(outcome.error)
        results.append(
            BatchItemResult(
                subject=item.subject,
                idempotency_key=item.idempotency_key,
                status=status,
                error=BatchItemError.model_validate(body),
            )
        )
    return BatchUploadResponse(results=results)
