"""Outbox keys and delivery: what identifies an upload, how due ones are sent, the report.

An upload has two fingerprints. Its *idempotency key* covers the full payload (computation
times included): the server stores a key with its body and answers a replay, or 409 for a
reused key with another body. Its *content hash* leaves computation times out: the store
queues nothing when the content of a (kind, subject, purpose) target did not change.

``OutboxDelivery.run`` sends due items in batches (``POST /profile-uploads``, each item with
its own idempotency key; a batch refused as a whole is retried item by item with ``PUT
/subjects/{subject}/profile`` to isolate a malformed item): 2xx delivered; 403 refused by the
server's consent check (reason codes kept, never retried); 401, 408, 425, 429, 5xx and
connection errors retried later with exponential backoff and jitter; other 4xx failed for
good. An item whose subject's consent for the purpose no longer holds is superseded instead
of sent. Delivery fills most of the ``SyncReport`` (defined here; ``client.uploader``
re-exports it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx

from consent import ConsentState, Purpose
from models import IDEMPOTENCY_HEADER, BatchUploadResponse, ProfileUpload, UploadResult

from .config import ClientSettings
from .outbox_store import OutboxEntry, OutboxItem, OutboxStatus
from .store import EdgeStore

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
ProgressCallback = Callable[[int, int], None]
Outcome = Literal["ok", "server_error", "stop"]

PROFILE_KIND = "profile"
#: Most items the server accepts in one ``POST /profile-uploads``.
MAX_BATCH = 500
_STOP_AFTER_SERVER_ERRORS = 3


def _digest(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def idempotency_key(*, edge_id: str, subject: str, purpose: str, payload: dict[str, Any]) -> str:
    """Return the SHA-256 hex key of an upload: same full payload, same key (server dedupes)."""
    return _digest({"edge": edge_id, "subject": subject, "purpose": purpose, "payload": payload})


def content_hash(upload: ProfileUpload) -> str:
    """Return the SHA-256 hex hash of what an upload says, computation times left out.

    Covers the purpose and each field's name, value, confidence, explanation and
    provisional flag (fields in name order), not ``computed_at``: rebuilding profiles with
    unchanged values gives the same hash.
    """
    fields = sorted(
        (f.model_dump(mode="json", exclude={"computed_at"}) for f in upload.fields),
        key=lambda f: str(f["name"]),
    )
    return _digest({"purpose": upload.purpose, "fields": fields})


def profile_entry(
    *, edge_id: str, subject: str, upload: ProfileUpload, snapshot: str | None = None
) -> OutboxEntry:
    """Return the outbox entry of a profile upload for ``subject``.

    ``snapshot`` (a full sync's identifier) joins the idempotency key, so a full re-sync is
    stored again even when the server still holds a receipt for the same body.
    """
    payload = upload.model_dump(mode="json")
    if not upload.replace:
        del payload["replace"]  # an incremental upload's body (and key) as before snapshots
    keyed = payload if snapshot is None else {**payload, "snapshot": snapshot}
    return OutboxEntry(
        kind=PROFILE_KIND,
        idempotency_key=idempotency_key(
            edge_id=edge_id, subject=subject, purpose=upload.purpose, payload=keyed
        ),
        content_hash=content_hash(upload),
        payload=payload,
        subject=subject,
        purpose=upload.purpose,
    )


def retry_delay(attempts: int, *, settings: ClientSettings, rng: random.Random) -> float:
    """Return seconds until the next attempt after ``attempts`` failed ones.

    ``retry_base_seconds * 2**attempts``, capped at ``retry_max_seconds``, times a uniform
    jitter factor in ``[1 - retry_jitter, 1 + retry_jitter]``.
    """
    delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2.0 ** min(attempts, 30))
    return delay * (1.0 + settings.retry_jitter * rng.uniform(-1.0, 1.0))


@dataclass
class SyncReport:
    """Outcome of one sync (counts and reason codes only).

    Parameters
    ----------
    consents_sent : int
        Consent events the server accepted (new or duplicate).
    uploads_enqueued, uploads_unchanged : int
        (subject, purpose) uploads queued now / skipped because their content (computation
        times aside) equals the target's latest item that is not superseded (pending,
        delivered, or refused or failed for exactly that content).
    uploads_superseded : int
        Pending uploads made stale in this sync: by a newer upload for the same target, or
        because nothing may be uploaded for it any more (consent withdrawn).
    uploads_delivered, uploads_replayed : int
        Uploads the server stored in this sync / answered as replays of earlier deliveries.
    uploads_failed : int
        Uploads that failed for good in this sync (a client error other than 401/403).
    fields_uploaded : int
        Fields the server stored.
    fields_withheld : dict[str, int]
        Field x purpose pairs kept on the edge by the consent policy, by reason code (they
        are never queued).
    refused_by_server : dict[str, int]
        Fields the server refused, by reason code.
    withheld_at_delivery : int
        Queued uploads superseded because consent no longer held when they were due.
    retried : int
        Delivery attempts that will be retried later.
    outbox : dict[str, int]
        Outbox items per status after the sync.
    pending, failed, delivered_total : int
        Shortcuts into ``outbox``: pending, failed and delivered items.
    ledgers_sent : int
        Ledger reports the server accepted.
    tokens_sent : int
        Identity tokens the server took (new or already held); tokens of subjects without
        any granted purpose are not sent.
    encodings_sent : int
        Quasi-identifier encodings the server took (new, changed or already held).
    persons_linked : int
        Pseudonyms the server linked into (or moved between) persons after those tokens and
        encodings.
    server_reachable : bool
        False when the server could not be reached.
    credentials_rejected : bool
        True when the server answered 401 to the edge's bearer token.
    notes : list[str]
        One-line problems (no PII).
    elapsed : float
        Wall-clock seconds.
    """

    consents_sent: int = 0
    uploads_enqueued: int = 0
    uploads_unchanged: int = 0
    uploads_superseded: int = 0
    uploads_delivered: int = 0
    uploads_replayed: int = 0
    uploads_failed: int = 0
    fields_uploaded: int = 0
    fields_withheld: dict[str, int] = field(default_factory=dict)
    refused_by_server: dict[str, int] = field(default_factory=dict)
    withheld_at_delivery: int = 0
    retried: int = 0
    outbox: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    failed: int = 0
    delivered_total: int = 0
    ledgers_sent: int = 0
    tokens_sent: int = 0
    encodings_sent: int = 0
    persons_linked: int = 0
    server_reachable: bool = True
    credentials_rejected: bool = False
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        data = dict(self.__dict__)
        data["fields_withheld"] = dict(sorted(self.fields_withheld.items()))
        data["refused_by_server"] = dict(sorted(self.refused_by_server.items()))
        data["outbox"] = dict(self.outbox)
        data["elapsed"] = round(self.elapsed, 3)
        return data


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no error code"
    code = body.get("error") if isinstance(body, dict) else None
    return str(code)[:60] if code else "no error code"


def _refusal_reasons(response: httpx.Response) -> list[str]:
    """Reason codes of a 403 answer (one per refused field, or the error code)."""
    try:
        body = response.json()
    except ValueError:
        return ["forbidden"]
    refused = body.get("refused") if isinstance(body, dict) else None
    if isinstance(refused, list) and refused:
        return [str(r.get("reason", "unknown"))[:60] for r in refused if isinstance(r, dict)]
    code = body.get("error") if isinstance(body, dict) else None
    return [str(code)[:60] if code else "forbidden"]


class OutboxDelivery:
    """Sends an edge's due outbox items in batches, recording each outcome in the store.

    Parameters
    ----------
    store : EdgeStore
        The store holding the outbox.
    http : httpx.Client
        Client with the API base URL (owned by the caller).
    settings : ClientSettings
        Retry policy (base, cap, jitter) and the batch size (at most ``MAX_BATCH``).
    clock : Clock
        UTC epoch seconds for scheduling.
    rng : random.Random
        Source of retry jitter (not security relevant).
    progress : ProgressCallback or None
        Called with ``(items attempted, items due)``.
    """

    def __init__(
        self,
        *,
        store: EdgeStore,
        http: httpx.Client,
        settings: ClientSettings,
        clock: Clock,
        rng: random.Random,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.store = store
        self._http = http
        self._settings = settings
        self._clock = clock
        self._rng = rng
        self._progress = progress

    def run(
        self,
        report: SyncReport,
        *,
        headers: dict[str, str],
        states: dict[str, ConsentState],
        now: datetime,
    ) -> None:
        """Deliver due items, a batch at a time, until none is due or the server stops answering.

        Parameters
        ----------
        report : SyncReport
            Receives the delivery counts (delivered, replayed, refused, failed, retried,
            superseded at delivery) and reachability.
        headers : dict[str, str]
            The edge's authorization header.
        states : dict[str, ConsentState]
            Each subject's consent, checked again for every item before it is sent.
        now : datetime
            The moment consent is evaluated at (timezone-aware).
        """
        attempted: set[int] = set()
        total = self.store.outbox_counts()[OutboxStatus.PENDING]
        size = min(self._settings.upload_batch_size, MAX_BATCH)
        server_errors = 0
        while True:
            due = self.store.due(now=self._clock(), limit=size)
            items = [i for i in due if i.id not in attempted]
            if not items:
                return
            attempted.update(i.id for i in items)
            sendable = [i for i in items if self._still_allowed(i, report, states=states, now=now)]
            outcome: Outcome = "ok"
            if sendable:
                outcome = self._deliver_batch(sendable, report, headers=headers)
            if self._progress is not None:
                self._progress(len(attempted), max(total, len(attempted)))
            server_errors = server_errors + 1 if outcome == "server_error" else 0
            if outcome == "stop" or server_errors >= _STOP_AFTER_SERVER_ERRORS:
                return

    def _still_allowed(
        self,
        item: OutboxItem,
        report: SyncReport,
        *,
        states: dict[str, ConsentState],
        now: datetime,
    ) -> bool:
        """Whether the item may still be sent; otherwise record why it will never be."""
        if item.kind != PROFILE_KIND or not item.subject or not item.purpose:
            self.store.mark_dead(item.id, status=OutboxStatus.FAILED, error="unknown item kind")
            report.uploads_failed += 1
            return False
        if not states.get(item.subject, ConsentState()).is_granted(Purpose(item.purpose), now):
            self.store.mark_dead(
                item.id, status=OutboxStatus.SUPERSEDED, error="consent withdrawn before delivery"
            )
            report.withheld_at_delivery += 1
            report.uploads_superseded += 1
            return False
        return True

    def _deliver_batch(
        self, items: list[OutboxItem], report: SyncReport, *, headers: dict[str, str]
    ) -> Outcome:
        """POST one batch (``/profile-uploads``) and record every item's outcome."""
        body = {
            "items": [
                {"subject": i.subject, "idempotency_key": i.idempotency_key, "upload": i.payload}
                for i in items
            ]
        }
        try:
            response = self._http.post("/profile-uploads", json=body, headers=headers)
        except httpx.TransportError as exc:
            return self._unreachable(items, report, exc)
        status = response.status_code
        if response.is_success:
            results = BatchUploadResponse.model_validate_json(response.content).results
            by_key = {r.idempotency_key: r for r in results}
            for item in items:
                result = by_key.get(item.idempotency_key)
                if result is None:
                    self._retry(item, report, "no result for item")
                    continue
                reasons = (
                    []
                    if result.error is None
                    else [r.reason for r in result.error.refused] or [result.error.error]
                )
                self._record(
                    item,
                    report,
                    status=result.status,
                    result=result.result,
                    reasons=reasons,
                    code=None if result.error is None else result.error.error,
                )
            return "ok"
        if status == 422:
            # The batch as a whole was refused (one malformed item?): isolate it one by one.
            outcomes = [self._deliver_one(i, report, headers=headers) for i in items]
            return "stop" if "stop" in outcomes else "ok"
        return self._whole_batch_failed(items, report, response)

    def _deliver_one(
        self, item: OutboxItem, report: SyncReport, *, headers: dict[str, str]
    ) -> Outcome:
        """PUT one item (used to isolate a malformed item of a refused batch)."""
        try:
            response = self._http.put(
                f"/subjects/{item.subject}/profile",
                json=item.payload,
                headers={**headers, IDEMPOTENCY_HEADER: item.idempotency_key},
            )
        except httpx.TransportError as exc:
            return self._unreachable([item], report, exc)
        if response.status_code in (401, 408, 425, 429) or response.status_code >= 500:
            return self._whole_batch_failed([item], report, response)
        result = UploadResult.model_validate_json(response.content) if response.is_success else None
        reasons = _refusal_reasons(response) if response.status_code == 403 else []
        self._record(
            item,
            report,
            status=response.status_code,
            result=result,
            reasons=reasons,
            code=None if response.is_success else _error_code(response),
        )
        return "ok"

    def _record(
        self,
        item: OutboxItem,
        report: SyncReport,
        *,
        status: int,
        result: UploadResult | None,
        reasons: list[str],
        code: str | None,
    ) -> None:
        """Record the server's answer to one item (from a batch or a single upload)."""
        if 200 <= status < 300 and result is not None:
            self.store.mark_delivered(item.id, now=self._clock())
            report.uploads_delivered += 1
            report.uploads_replayed += result.replayed
            report.fields_uploaded += 0 if result.replayed else len(result.stored)
            return
        if status == 403:
            reasons = [r[:60] for r in reasons] or ["forbidden"]
            for reason in reasons:
                report.refused_by_server[reason] = report.refused_by_server.get(reason, 0) + 1
            error = "HTTP 403: " + ",".join(sorted(set(reasons)))
            self.store.mark_dead(item.id, status=OutboxStatus.REFUSED, error=error)
            return
        if status in (408, 425, 429) or status >= 500:
            self._retry(item, report, f"HTTP {status}")
            return
        self.store.mark_dead(item.id, status=OutboxStatus.FAILED, error=f"HTTP {status}: {code}")
        report.uploads_failed += 1
        report.notes.append(f"an upload failed permanently with HTTP {status}")

    def _unreachable(
        self, items: list[OutboxItem], report: SyncReport, exc: httpx.TransportError
    ) -> Outcome:
        """Keep everything queued for a later retry: the server did not answer."""
        for item in items:
            self._retry(item, report, f"transport: {type(exc).__name__}")
        report.server_reachable = False
        report.notes.append(f"server unreachable ({type(exc).__name__}); uploads stay queued")
        return "stop"

    def _whole_batch_failed(
        self, items: list[OutboxItem], report: SyncReport, response: httpx.Response
    ) -> Outcome:
        """Handle a whole-request status: retry (401, 408, 425, 429, 5xx) or fail for good."""
        status = response.status_code
        if status == 401:
            for item in items:
                self._retry(item, report, "HTTP 401")
            report.credentials_rejected = True
            report.notes.append("the server rejected the edge credentials; uploads stay queued")
            return "stop"
        if status in (408, 425, 429) or status >= 500:
            for item in items:
                self._retry(item, report, f"HTTP {status}")
            return "server_error" if status >= 500 else "stop"
        code = _error_code(response)
        for item in items:
            self._record(
                item,
                report,
                status=status,
                result=None,
                reasons=_refusal_reasons(response) if status == 403 else [],
                code=code,
            )
        return "ok"

    def _retry(self, item: OutboxItem, report: SyncReport, error: str) -> None:
        """Reschedule with exponential backoff and jitter."""
        delay = retry_delay(item.attempts, settings=self._settings, rng=self._rng)
        self.store.mark_retry(item.id, error=error, retry_at=self._clock() + delay)
        report.retried += 1
        logger.debug("outbox item %d retried in %.0fs (%s)", item.id, delay, error)
