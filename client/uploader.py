"""The edge uploader: consent events, consent-scoped profile fields and ledgers to the server.

A sync runs four numbered steps (``EdgeUploader.sync``):

1. POST consent events not yet sent, so the server judges uploads by the same consent;
2. for each subject and upload purpose, evaluate every computed field with
   ``consent.evaluate`` at ``now``: allowed fields form one ``ProfileUpload`` per
   (subject, purpose) and are queued in the store's outbox; the rest are *withheld on the
   edge* (never queued, only counted by reason). Queueing skips uploads whose content did
   not change and supersedes stale pending ones; a (subject, purpose) that may upload
   nothing any more has its pending upload superseded;
3. deliver due outbox items (``client.outbox.OutboxDelivery``);
4. report each model's privacy ledger.

Steps 3 and 4 only run when step 1 succeeded: uploading fields before the server holds the
consent that allows them would get them refused for good. Outbox errors hold status codes
and reason codes only.
"""

from __future__ import annotations

import importlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import httpx
from pydantic import ValidationError

from consent import (
    ConsentState,
    DecisionReason,
    FieldCatalogue,
    Purpose,
    evaluate,
    load_default_catalogue,
)
from models import (
    ENROLLMENT_HEADER,
    Channel,
    ConsentBatchResult,
    EdgeCredential,
    EdgeRegistration,
    ExplanationItem,
    IdentityEncodingResult,
    IdentityTokenResult,
    LedgerReport,
    ProfileFieldIn,
    ProfileUpload,
)
from privacy import PrivacyError

from .config import ClientSettings
from .credentials import load_credentials, save_credentials
from .errors import EdgeConfigError, RegistrationError, ServerUnavailableError
from .outbox import (
    PROFILE_KIND,
    Clock,
    OutboxDelivery,
    ProgressCallback,
    SyncReport,
    profile_entry,
)
from .outbox_store import OutboxEntry, OutboxStatus
from .server_http import server_client
from .store import EdgeStore, StoredProfileField, from_epoch

logger = logging.getLogger(__name__)

LedgerReporter = Callable[[EdgeStore, str], LedgerReport | None]

CONSENT_BATCH = 500
#: Subjects per ``POST /identity-tokens`` (the server's limit).
TOKEN_BATCH = 500


def _may_send(state: ConsentState | None, now: datetime) -> bool:
    """Whether identity data of a pseudonym may go to the server (which decides for good).

    Not when this edge recorded consent events for it and none grants a purpose now (it was
    withdrawn here); yes otherwise, the server's consent across channels deciding.
    """
    return state is None or not state.events or bool(state.granted_purposes(now))


def _default_ledger_reporter(store: EdgeStore, model: str) -> LedgerReport | None:
    """Call ``client.ledger.ledger_report`` (imported lazily: it is written separately)."""
    module = importlib.import_module("client.ledger")
    report: LedgerReport | None = module.ledger_report(store, model)
    return report


def _field_in(stored: StoredProfileField) -> ProfileFieldIn:
    return ProfileFieldIn(
        name=stored.field,
        value=stored.value,
        confidence=stored.confidence,
        explanation=[ExplanationItem.model_validate(e) for e in stored.explanation],
        provisional=stored.provisional,
        computed_at=from_epoch(stored.computed_at),
    )


class EdgeUploader:
    """Sends an edge's consent events, allowed profile fields and ledgers to the server.

    Parameters
    ----------
    store : EdgeStore
        The edge store (profiles, consents, outbox, ledgers).
    settings : ClientSettings
        Server URL, timeouts, retry policy, upload purposes, edge directory.
    transport : httpx.BaseTransport or None
        HTTP transport; ``None`` uses httpx's pooled keep-alive transport. Tests pass
        ``httpx.MockTransport`` or a transport bound to an app.
    clock : Clock
        UTC epoch seconds for outbox scheduling (queue, retry and due times).
    rng : random.Random or None
        Source of retry jitter (not security relevant).
    ledger_reporter : LedgerReporter or None
        Builds a ``LedgerReport`` for a model; default ``client.ledger.ledger_report``.
    catalogue : FieldCatalogue or None
        The catalogue in force; default the shipped one.
    progress : ProgressCallback or None
        Called with ``(uploads attempted, uploads due)`` during delivery.
    """

    def __init__(
        self,
        *,
        store: EdgeStore,
        settings: ClientSettings,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        ledger_reporter: LedgerReporter | None = None,
        catalogue: FieldCatalogue | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self._ledger_reporter = ledger_reporter or _default_ledger_reporter
        self._catalogue = catalogue or load_default_catalogue()
        self._progress = progress
        self._http = server_client(settings, transport=transport)
        self._credential = load_credentials(settings.credentials_path)

    def __repr__(self) -> str:
        return f"EdgeUploader(server={self.settings.server_url!r}, registered={self.registered})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def registered(self) -> bool:
        """Whether the edge holds server credentials."""
        return self._credential is not None

    @property
    def edge_id(self) -> str | None:
        """The server's id for this edge, once registered."""
        return None if self._credential is None else self._credential.edge_id

    # ------------------------------------------------------------------ registration
    def register(self, name: str, channel: Channel | str, enrollment_token: str) -> EdgeCredential:
        """Register the edge and save its credentials (mode 0600) in the edge directory.

        Parameters
        ----------
        name : str
            Edge name (letters, digits, ``_.-``).
        channel : Channel or str
            The channel this edge serves.
        enrollment_token : str
            The server's enrollment token (sent in a header, never logged).

        Returns
        -------
        EdgeCredential
            The edge id and bearer token.

        Raises
        ------
        RegistrationError
            If the server refuses the token or the request.
        ServerUnavailableError
            If the server cannot be reached.
        """
        body = EdgeRegistration(name=name, channel=Channel(channel))
        try:
            response = self._http.post(
                "/edges",
                json=body.model_dump(mode="json"),
                headers={ENROLLMENT_HEADER: enrollment_token},
            )
        except httpx.TransportError:
            raise ServerUnavailableError(self.settings.server_url) from None
        if response.status_code in (401, 403):
            raise RegistrationError(
                "the server refused the enrollment token", status=response.status_code
            )
        if not response.is_success:
            raise RegistrationError(f"HTTP {response.status_code}", status=response.status_code)
        try:
            credential = EdgeCredential.model_validate_json(response.content)
        except ValidationError:
            raise RegistrationError("the server's answer is not an edge credential") from None
        save_credentials(
            self.settings.credentials_path, credential, server_url=self.settings.server_url
        )
        self.store.set_meta("edge_id", credential.edge_id)
        self._credential = credential
        logger.info("edge registered as %s", credential.edge_id)
        return credential

    def _auth(self) -> dict[str, str]:
        if self._credential is None:
            raise EdgeConfigError(
                "the edge is not registered; run 'fedprofile edge sync' with an enrollment token"
            )
        return {"Authorization": f"Bearer {self._credential.token}"}

    # ------------------------------------------------------------------ sync
    def sync(self, *, now: datetime, full: bool = False) -> SyncReport:
        """Run one sync: consents, enqueue allowed fields, deliver, ledgers.

        Parameters
        ----------
        now : datetime
            The moment consent is evaluated at (timezone-aware).
        full : bool
            Send a complete snapshot: every consent event again (the server counts repeats
            as duplicates) and every subject's allowed fields as ``replace`` uploads, even
            when unchanged, so a server that lost state, or holds stale contributions of
            this edge, ends up with exactly what the edge holds.

        Returns
        -------
        SyncReport
            Counts per step; ``server_reachable`` is False when the server was down.

        Raises
        ------
        EdgeConfigError
            If the edge is not registered.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        started = time.perf_counter()
        report = SyncReport()
        headers = self._auth()
        states = self.store.consent_states()
        # 1. consent events first: the server judges uploads by them
        consents_ok = self._send_consents(report, headers, resend=full)
        # 2. evaluate and enqueue (local; works while the server is down)
        self._enqueue(report, states=states, now=now, full=full)
        if consents_ok:
            # 3. deliver due uploads
            delivery = OutboxDelivery(
                store=self.store,
                http=self._http,
                settings=self.settings,
                clock=self._clock,
                rng=self._rng,
                progress=self._progress,
            )
            delivery.run(report, headers=headers, states=states, now=now)
            # 4. identity tokens (after profiles: the server links what it already holds)
            self._send_tokens(report, headers, states=states, now=now, resend=full)
            self._send_encodings(report, headers, states=states, now=now)
            # 5. ledgers
            self._send_ledgers(report, headers)
        report.outbox = self.store.outbox_counts()
        report.pending = report.outbox[OutboxStatus.PENDING]
        report.failed = report.outbox[OutboxStatus.FAILED]
        report.delivered_total = report.outbox[OutboxStatus.DELIVERED]
        report.elapsed = time.perf_counter() - started
        logger.info(
            "sync: %d consent(s), %d upload(s) delivered, %d pending, reachable=%s",
            report.consents_sent,
            report.uploads_delivered,
            report.pending,
            report.server_reachable,
        )
        return report

    def _send_consents(
        self, report: SyncReport, headers: dict[str, str], *, resend: bool = False
    ) -> bool:
        """POST unsynced (or, to resend, all) consent events in batches.

        Returns False if any batch did not get through.
        """
        unsynced = self.store.consent_events(unsynced_only=not resend)
        for start in range(0, len(unsynced), CONSENT_BATCH):
            batch = unsynced[start : start + CONSENT_BATCH]
            body = [c.event.model_dump(mode="json") for c in batch]
            try:
                response = self._http.post("/consents", json=body, headers=headers)
            except httpx.TransportError as exc:
                report.server_reachable = False
                report.notes.append(
                    f"server unreachable ({type(exc).__name__}); uploads stay queued"
                )
                return False
            if response.status_code == 401:
                report.credentials_rejected = True
            if not response.is_success:
                report.notes.append(
                    f"consent upload answered HTTP {response.status_code}; uploads held back"
                )
                if response.status_code >= 500:
                    report.server_reachable = False
                return False
            result = ConsentBatchResult.model_validate_json(response.content)
            self.store.mark_consents_synced(c.consent_id for c in batch)
            report.consents_sent += result.recorded + result.duplicates
        return True

    def _enqueue(
        self,
        report: SyncReport,
        *,
        states: dict[str, ConsentState],
        now: datetime,
        full: bool = False,
    ) -> None:
        """Queue one upload per (subject, purpose) holding exactly the allowed fields.

        With ``full``, every upload is queued (unchanged ones too) as a ``replace`` snapshot
        under a key of its own, so the server stores it again.

        Withheld fields are only counted. A (subject, purpose) left with no allowed field has
        its pending upload superseded: what consent no longer allows must not leave later.
        """
        edge_id = self.edge_id or ""
        withheld: Counter[str] = Counter()
        entries: list[OutboxEntry] = []
        closed: list[tuple[str, str | None, str | None]] = []
        by_subject: dict[str, list[StoredProfileField]] = {}
        for stored in self.store.profile_fields():
            by_subject.setdefault(stored.subject, []).append(stored)
        purposes = [Purpose(p) for p in self.settings.upload_purposes]
        snapshot = now.isoformat() if full else None
        for subject, fields in by_subject.items():
            state = states.get(subject, ConsentState())
            for purpose in purposes:
                allowed: list[ProfileFieldIn] = []
                for stored in fields:
                    decision = evaluate(
                        catalogue=self._catalogue,
                        consent=state,
                        field=stored.field,
                        purpose=purpose,
                        at=now,
                    )
                    if decision.allowed:
                        allowed.append(_field_in(stored))
                    elif decision.reason is not DecisionReason.PURPOSE_NOT_ALLOWED:
                        # Not applicable (the catalogue never uses the field for this purpose)
                        # is not withholding; consent refusals are.
                        withheld[decision.reason.value] += 1
                if not allowed:
                    closed.append((PROFILE_KIND, subject, purpose.value))
                    continue
                upload = ProfileUpload(purpose=purpose.value, fields=allowed, replace=full)
                entry = profile_entry(
                    edge_id=edge_id, subject=subject, upload=upload, snapshot=snapshot
                )
                entries.append(entry)
        counts = self.store.enqueue_many(entries, now=self._clock(), force=full)
        withdrawn = self.store.supersede_pending(closed, reason="nothing allowed for purpose")
        report.uploads_enqueued += counts.queued
        report.uploads_unchanged += counts.unchanged
        report.uploads_superseded += counts.superseded + withdrawn
        report.fields_withheld = dict(withheld)

    def _send_tokens(
        self,
        report: SyncReport,
        headers: dict[str, str],
        *,
        states: dict[str, ConsentState],
        now: datetime,
        resend: bool = False,
    ) -> None:
        """POST identity tokens, 500 pseudonyms a time; the server keeps consented ones only.

        A pseudonym this edge knows to be withdrawn from every purpose is not sent. Others are,
        even without a local grant: the server holds consent from every channel (a phone
        seen here only in a login may be consented at the desk) and names the ones it
        refuses, whose tokens stay queued for a later sync.
        """
        if resend:
            self.store.mark_all_tokens_unsynced()
        by_subject: dict[str, list[tuple[str, str]]] = {}
        for subject, kind, token in self.store.identity_tokens(unsynced_only=True):
            if _may_send(states.get(subject), now):
                by_subject.setdefault(subject, []).append((kind, token))
        items: dict[str, dict[str, object]] = {
            s: {"subject": s, "tokens": [{"kind": k, "token": t} for k, t in pairs[:32]]}
            for s, pairs in by_subject.items()
        }
        def read(answer: bytes) -> tuple[int, list[str]]:
            result = IdentityTokenResult.model_validate_json(answer)
            report.tokens_sent += result.recorded + result.duplicates
            return result.linked, result.refused_subjects

        for taken in self._post_identity(report, headers, "/identity-tokens", items, read):
            self.store.mark_tokens_synced((s, t) for s in taken for _, t in by_subject[s][:32])

    def _send_encodings(
        self,
        report: SyncReport,
        headers: dict[str, str],
        *,
        states: dict[str, ConsentState],
        now: datetime,
    ) -> None:
        """POST quasi-identifier encodings, 500 a time (selection as for tokens)."""
        records = {
            subject: record
            for subject, record in self.store.linkage_encodings(unsynced_only=True)
            if _may_send(states.get(subject), now)
        }
        items: dict[str, dict[str, object]] = {
            s: {"subject": s, "record": json.loads(r)} for s, r in records.items()
        }
        def read(answer: bytes) -> tuple[int, list[str]]:
            result = IdentityEncodingResult.model_validate_json(answer)
            report.encodings_sent += result.recorded + result.unchanged
            return result.linked, result.refused_subjects

        for taken in self._post_identity(report, headers, "/identity-encodings", items, read):
            self.store.mark_encodings_synced((s, records[s]) for s in taken)

    def _post_identity(
        self,
        report: SyncReport,
        headers: dict[str, str],
        path: str,
        items: dict[str, dict[str, object]],
        read: Callable[[bytes], tuple[int, list[str]]],
    ) -> Iterator[list[str]]:
        """POST ``items`` (by pseudonym) in batches; yield each batch's accepted pseudonyms.

        ``read`` parses an answer (counting what it reports) into pseudonyms linked and
        pseudonyms refused. Stops at the first failure (a note in the report; the rest stays
        queued).
        """
        subjects = sorted(items)
        for start in range(0, len(subjects), TOKEN_BATCH):
            chunk = subjects[start : start + TOKEN_BATCH]
            body = {"items": [items[s] for s in chunk]}
            try:
                response = self._http.post(path, json=body, headers=headers)
            except httpx.TransportError as exc:
                report.server_reachable = False
                report.notes.append(f"server unreachable ({type(exc).__name__}); {path} waits")
                return
            if not response.is_success:
                report.notes.append(f"{path} answered HTTP {response.status_code}")
                return
            linked, refused_list = read(response.content)
            refused = set(refused_list)
            report.persons_linked += linked
            yield [s for s in chunk if s not in refused]

    def _send_ledgers(self, report: SyncReport, headers: dict[str, str]) -> None:
        """PUT each model's ledger report (idempotent: the full state each time)."""
        models = self.store.ledger_models()
        if not models:
            return
        for model in models:
            try:
                ledger = self._ledger_reporter(self.store, model)
            except ImportError:
                report.notes.append("ledger reporting is unavailable on this edge")
                return
            except PrivacyError as exc:
                report.notes.append(
                    f"ledger of model {model} cannot be read ({type(exc).__name__})"
                )
                continue
            if ledger is None:
                continue
            try:
                response = self._http.put(
                    "/edges/me/ledger", json=ledger.model_dump(mode="json"), headers=headers
                )
            except httpx.TransportError:
                report.server_reachable = False
                report.notes.append("server unreachable while sending ledgers")
                return
            if response.is_success:
                report.ledgers_sent += 1
            else:
                report.notes.append(
                    f"ledger report for {model} answered HTTP {response.status_code}"
                )


def utc_now() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)
