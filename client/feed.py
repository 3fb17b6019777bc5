"""The subject-event feed at the edge: apply erasures, restrictions, suppressions, consents.

At every ``fedprofile edge sync`` the edge first reads the server's feed
(``GET /api/v1/edges/me/subject-events?after=<cursor>``) and applies each event to its local
store, before anything is uploaded:

- ``erasure``: the event names no one; it carries ``sha256(salt || pseudonym)``. The edge
  hashes its own pseudonyms with the salt and deletes every local row of the one that
  matches (events, messages, consents, profile, outbox, rollups, any table with a subject
  column), so it is neither uploaded nor trained on again;
- ``restriction``: every purpose the subject has granted gets a local ``revoked`` consent
  event, so the uploader sends nothing and training leaves the subject out (both read the
  store's consent states); the revoked purposes are remembered;
- ``restriction_lifted``: those purposes are granted again, copying the earlier grants;
- ``field_suppressed``: the local value is deleted and the field is recorded as suppressed,
  so ``consent.evaluate`` withholds it from every later upload;
- ``consent``: a consent event recorded elsewhere (another edge, self-service:
  withdrawals and personalisation-off included) joins the local consent records.

Events the feed applies are marked synced: they came from the server and are never sent
back. The cursor is stored after each page, so an interrupted sync resumes where it stopped;
applying an event twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx
from pydantic import ValidationError

from consent import (
    ConsentEvent,
    ConsentStatus,
    SubjectEventKind,
    SubjectEventPage,
    SubjectEventWire,
)

from .config import ClientSettings
from .credentials import load_credentials
from .errors import EdgeConfigError
from .server_http import server_client
from .store import EdgeStore, StoredConsent, to_epoch

logger = logging.getLogger(__name__)

#: Store metadata key holding the feed cursor.
CURSOR_KEY = "subject_feed_cursor"
#: Feed path under the API prefix.
FEED_PATH = "/edges/me/subject-events"
#: Pages read per sync at most (the rest waits for the next sync).
MAX_PAGES = 100
#: Column names that hold a pseudonym in the edge store's tables.
_SUBJECT_COLUMNS = ("subject", "pseudonym", "old_pseudonym", "new_pseudonym")


@dataclass
class FeedReport:
    """What one feed pull did (counts only; never a pseudonym).

    Parameters
    ----------
    reachable : bool
        Whether the server answered.
    events : int
        Events read.
    erased_subjects : int
        Local subjects deleted by erasure events.
    erased_rows : int
        Local rows deleted by them.
    restricted, lifted, suppressed, consents : int
        Restrictions applied, restrictions lifted, fields suppressed, consent events added.
    cursor : str or None
        The stored cursor after the pull.
    notes : list[str]
        Why a pull stopped early (unreachable, refused), for the sync report.
    """

    reachable: bool = True
    events: int = 0
    erased_subjects: int = 0
    erased_rows: int = 0
    restricted: int = 0
    lifted: int = 0
    suppressed: int = 0
    consents: int = 0
    cursor: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """Return the report as a JSON-ready dict."""
        return {
            "reachable": self.reachable,
            "events": self.events,
            "erased_subjects": self.erased_subjects,
            "erased_rows": self.erased_rows,
            "restricted": self.restricted,
            "lifted": self.lifted,
            "suppressed": self.suppressed,
            "consents": self.consents,
        }


def _feed_id(event: SubjectEventWire, suffix: str = "") -> str:
    """Return a stable local consent id for an event applied from the feed."""
    digest = hashlib.sha256((event.model_dump_json() + suffix).encode()).hexdigest()
    return f"feed-{digest[:40]}"


def _subject_tables(store: EdgeStore) -> list[tuple[str, str]]:
    """Return every ``(table, column)`` of the store file whose column holds a pseudonym."""
    db = store._db  # the store's own connection: feed changes share its file and locks
    found = []
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for row in db.execute(f'PRAGMA table_info("{table}")'):
            if row[1] in _SUBJECT_COLUMNS:
                found.append((table, str(row[1])))
    return found


def _local_subjects(store: EdgeStore) -> set[str]:
    """Return every pseudonym any table of the store holds."""
    found: set[str] = set()
    for table, column in _subject_tables(store):
        rows = store._db.execute(f'SELECT DISTINCT "{column}" FROM "{table}"')
        found.update(str(r[0]) for r in rows if r[0] is not None)
    return found


def erase_local_subject(store: EdgeStore, subject: str) -> int:
    """Delete every local row naming ``subject`` (one transaction).

    Parameters
    ----------
    store : EdgeStore
        The edge store.
    subject : str
        The erased pseudonym.

    Returns
    -------
    int
        Rows deleted.
    """
    deleted = 0
    with store._transaction() as db:
        for table, column in _subject_tables(store):
            cursor = db.execute(f'DELETE FROM "{table}" WHERE "{column}" = ?', (subject,))
            deleted += max(cursor.rowcount, 0)
    return deleted


def _add_synced(store: EdgeStore, consents: Sequence[StoredConsent]) -> int:
    """Append consent events that came from the server and mark them synced."""
    if not consents:
        return 0
    counts = store.add_consents(consents)
    store.mark_consents_synced(c.consent_id for c in consents)
    return counts.inserted


def _restrict(store: EdgeStore, event: SubjectEventWire) -> bool:
    """Revoke every purpose the subject grants now, remembering them for a lift."""
    subject = event.subject
    assert subject is not None
    if store._db.execute(
        "SELECT 1 FROM restricted_subjects WHERE subject = ?", (subject,)
    ).fetchone():
        return False
    state = store.consent_states().get(subject)
    at = event.occurred_at
    grants = [] if state is None else [state.latest(p, at) for p in state.granted_purposes(at)]
    kept = [g for g in grants if g is not None]
    revoked = [
        StoredConsent(
            _feed_id(event, g.purpose.value),
            g.model_copy(update={"status": ConsentStatus.REVOKED, "occurred_at": at,
                                 "expires_at": None, "evidence_hash": None}),
        )
        for g in kept
    ]
    _add_synced(store, revoked)
    with store._transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO restricted_subjects VALUES (?, ?, ?)",
            (subject, json.dumps([g.model_dump(mode="json") for g in kept]), to_epoch(at)),
        )
    return True


def _lift(store: EdgeStore, event: SubjectEventWire) -> bool:
    """Grant again the purposes a restriction revoked (copies of the earlier grants)."""
    subject = event.subject
    assert subject is not None
    row = store._db.execute(
        "SELECT purposes_json FROM restricted_subjects WHERE subject = ?", (subject,)
    ).fetchone()
    if row is None:
        return False
    grants = [ConsentEvent.model_validate(g) for g in json.loads(row[0])]
    regranted = [
        StoredConsent(
            _feed_id(event, g.purpose.value),
            g.model_copy(update={"occurred_at": event.occurred_at}),
        )
        for g in grants
    ]
    _add_synced(store, regranted)
    with store._transaction() as db:
        db.execute("DELETE FROM restricted_subjects WHERE subject = ?", (subject,))
    return True


def _suppress(store: EdgeStore, event: SubjectEventWire) -> None:
    """Delete the local value of a suppressed field and record the suppression."""
    with store._transaction() as db:
        db.execute(
            "DELETE FROM profiles WHERE subject = ? AND field = ?", (event.subject, event.field)
        )
        db.execute(
            "INSERT OR REPLACE INTO suppressed_fields VALUES (?, ?, ?)",
            (event.subject, event.field, event.reason or "suppressed"),
        )


def apply_events(store: EdgeStore, events: Iterable[SubjectEventWire]) -> FeedReport:
    """Apply feed events to the local store, in order.

    Parameters
    ----------
    store : EdgeStore
        The edge store.
    events : Iterable[SubjectEventWire]
        Events as the feed returned them.

    Returns
    -------
    FeedReport
        Counts of what was applied.
    """
    report = FeedReport()
    for event in events:
        report.events += 1
        if event.kind is SubjectEventKind.ERASURE:
            for subject in sorted(_local_subjects(store)):
                if subject.startswith("ps_") and event.matches(subject):
                    report.erased_rows += erase_local_subject(store, subject)
                    report.erased_subjects += 1
        elif event.subject is None:
            continue  # every other kind names its subject; ignore a malformed one
        elif event.kind is SubjectEventKind.RESTRICTION:
            report.restricted += int(_restrict(store, event))
        elif event.kind is SubjectEventKind.RESTRICTION_LIFTED:
            report.lifted += int(_lift(store, event))
        elif event.kind is SubjectEventKind.FIELD_SUPPRESSED and event.field is not None:
            _suppress(store, event)
            report.suppressed += 1
        elif event.kind is SubjectEventKind.CONSENT and event.consent is not None:
            report.consents += _add_synced(
                store, [StoredConsent(_feed_id(event), event.consent)]
            )
    logger.info(
        "feed: %d event(s); %d subject(s) erased, %d restricted, %d lifted, %d field(s) "
        "suppressed, %d consent event(s)",
        report.events,
        report.erased_subjects,
        report.restricted,
        report.lifted,
        report.suppressed,
        report.consents,
    )
    return report


def _merge(total: FeedReport, page: FeedReport) -> None:
    """Add one page's counts to the running report."""
    for name in ("events", "erased_subjects", "erased_rows", "restricted", "lifted",
                 "suppressed", "consents"):
        setattr(total, name, getattr(total, name) + getattr(page, name))


def pull_subject_events(
    *, store: EdgeStore, http: httpx.Client, token: str, max_pages: int = MAX_PAGES
) -> FeedReport:
    """Read the feed page by page from the stored cursor and apply it.

    Parameters
    ----------
    store : EdgeStore
        The edge store (holds the cursor).
    http : httpx.Client
        A client whose base URL is the server's API root (``.../api/v1``).
    token : str
        The edge's bearer token.
    max_pages : int
        Pages read at most in this pull.

    Returns
    -------
    FeedReport
        Counts; ``reachable`` is False when the server could not be reached (nothing is
        lost: the next sync resumes from the stored cursor). A refused token or cursor is
        noted, not raised: the upload step that follows reports a refused token itself.
    """
    report = FeedReport(cursor=store.get_meta(CURSOR_KEY) or None)
    for _ in range(max_pages):
        params = {} if report.cursor is None else {"after": report.cursor}
        try:
            response = http.get(
                FEED_PATH, params=params, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            report.reachable = False
            report.notes.append(f"subject-event feed unreachable ({type(exc).__name__})")
            return report
        if response.status_code == 422:
            # A cursor this server did not issue (e.g. its database was restored): start
            # again from the beginning next time; applying an event twice changes nothing.
            store.set_meta(CURSOR_KEY, "")
            report.cursor = None
            report.notes.append("subject-event feed refused the stored cursor; reset it")
            return report
        if response.status_code in (401, 403):
            status = response.status_code
            report.notes.append(f"subject-event feed refused this edge (HTTP {status})")
            return report
        if response.status_code >= 400:
            report.reachable = False
            report.notes.append(f"subject-event feed answered HTTP {response.status_code}")
            return report
        try:
            page = SubjectEventPage.model_validate(response.json())
        except (ValidationError, ValueError):
            report.notes.append("subject-event feed page did not parse; retried next sync")
            return report
        _merge(report, apply_events(store, page.events))
        store.set_meta(CURSOR_KEY, page.cursor)
        report.cursor = page.cursor
        if not page.more:
            break
    return report


def sync_subject_events(
    *,
    store: EdgeStore,
    settings: ClientSettings,
    transport: httpx.BaseTransport | None = None,
) -> FeedReport:
    """Pull and apply the feed with the edge's stored credentials (the ``edge sync`` hook).

    Parameters
    ----------
    store : EdgeStore
        The edge store.
    settings : ClientSettings
        Server URL, timeouts and the credentials file.
    transport : httpx.BaseTransport or None
        HTTP transport (tests bind one to an app); ``None`` for the default.

    Returns
    -------
    FeedReport
        What was applied.

    Raises
    ------
    EdgeConfigError
        If the edge is not registered.
    """
    credential = load_credentials(settings.credentials_path)
    if credential is None:
        raise EdgeConfigError(
            "the edge is not registered; run 'fedprofile edge sync' with an enrollment token"
        )
    with server_client(settings, transport=transport) as http:
        return pull_subject_events(store=store, http=http, token=credential.token)


__all__ = [
    "CURSOR_KEY",
    "FeedReport",
    "apply_events",
    "erase_local_subject",
    "pull_subject_events",
    "sync_subject_events",
]
