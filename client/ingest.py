"""Ingestion: channel input files -> validated, pseudonymous, masked rows in the edge store.

Each line (JSON lines or CSV) is validated against ``client.schemas.InputLine``; its customer
becomes a pseudonym; timestamps become UTC epoch seconds; categories are normalised; amounts
become CNY with two decimals (the original amount and currency are kept); message text is
PII-masked *before* it reaches the store; consent lines become ``consent.ConsentEvent`` records.
A line that fails any step is written, with its number and reason, to the edge's quarantine
file (mode 0600; the raw line stays on the edge) and reported. Reasons never contain input
values: pydantic errors are formatted from their location and type only.

Files are read and lines validated by ``client.readers`` (readers chosen by file suffix,
PII-safe validation messages) and converted by ``client.convert``; this module batches,
masks, quarantines and stores.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from models import normalize_category
from privacy import Pseudonymizer

from .config import QUARANTINE_FILENAME
from .convert import DEFAULT_CNY_RATES, checked_rates, to_stored_consent, to_stored_event
from .encodings import detect_encoding, encoding_note
from .identity import IdentityResolver, Tokens
from .readers import (
    KINDS,
    ParsedLine,
    RawRecord,
    format_validation_error,
    kind_of,
    line_problem,
    parse_record,
    reader_for,
)
from .schemas import EventLine, MessageLine
from .store import EdgeStore, StoredConsent, StoredEvent, StoredMessage

logger = logging.getLogger(__name__)

#: Progress hook: ``(bytes read so far, total bytes)``.
ProgressCallback = Callable[[int, int], None]

#: Lines per store transaction (fewer, larger commits: far fewer WAL checkpoints).
BATCH_LINES = 20_000
#: Messages per batch: masking is the slow step, so progress is reported more often.
BATCH_MESSAGES = 2_000
MAX_REPORTED_ERRORS = 20


class ScrubbedText(Protocol):
    """One masked text as returned by a scrubber (``privacy.ScrubResult`` has this shape)."""

    @property
    def text(self) -> str:
        """The masked text."""
        ...

    def counts(self) -> dict[str, int]:
        """Entities masked, by entity type."""
        ...


class Scrubber(Protocol):
    """What ingestion needs from a PII detector (``privacy.PIIDetector`` has this shape)."""

    def scrub_many(
        self, texts: Sequence[str], *, lang: Literal["zh", "en"]
    ) -> Sequence[ScrubbedText]:
        """Mask PII in each text, returning results in input order."""
        ...


@dataclass
class IngestReport:
    """Outcome of ingesting one or more files; nothing is dropped without being counted.

    Parameters
    ----------
    files : list[str]
        Files ingested.
    lines : int
        Non-blank lines read.
    accepted, rejected, duplicates : dict[str, int]
        Per kind (``event``, ``message``, ``consent``; ``unknown`` for lines whose kind could
        not be determined). Duplicates are lines whose id was already stored.
    entities_masked : dict[str, int]
        PII entities masked in messages, by entity type.
    errors : list[str]
        The first ``MAX_REPORTED_ERRORS`` rejections as ``line N: <field>: <reason>``.
    quarantine : str or None
        The quarantine file, when any line was rejected.
    notes : list[str]
        Things an operator should know that are not rejections (e.g. a file read as GB18030).
    elapsed : float
        Wall-clock seconds.
    identity_tokens : int
        New (pseudonym, identity token) pairs recorded for linking.
    linkage_encodings : int
        Pseudonyms whose quasi-identifier encoding was recorded or changed.
    tokens_refused : dict[str, int]
        Secondary identifiers left out of linking, by reason (placeholders such as
        ``11111111111``, malformed values); the line itself was accepted.
    """

    files: list[str] = field(default_factory=list)
    lines: int = 0
    accepted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    duplicates: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    entities_masked: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    quarantine: str | None = None
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    identity_tokens: int = 0
    linkage_encodings: int = 0
    tokens_refused: dict[str, int] = field(default_factory=dict)

    @property
    def total_accepted(self) -> int:
        """Lines stored (new rows)."""
        return sum(self.accepted.values())

    @property
    def total_rejected(self) -> int:
        """Lines quarantined."""
        return sum(self.rejected.values())

    @property
    def total_duplicates(self) -> int:
        """Lines whose id was already stored."""
        return sum(self.duplicates.values())

    def merge(self, other: IngestReport) -> None:
        """Add ``other``'s counts to this report (for several files)."""
        self.files.extend(other.files)
        self.lines += other.lines
        for mine, theirs in (
            (self.accepted, other.accepted),
            (self.rejected, other.rejected),
            (self.duplicates, other.duplicates),
            (self.entities_masked, other.entities_masked),
            (self.tokens_refused, other.tokens_refused),
        ):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        room = MAX_REPORTED_ERRORS - len(self.errors)
        self.errors.extend(other.errors[: max(room, 0)])
        self.quarantine = self.quarantine or other.quarantine
        self.notes.extend(other.notes)
        self.elapsed += other.elapsed
        self.identity_tokens += other.identity_tokens
        self.linkage_encodings += other.linkage_encodings

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary (counts, reasons and paths only)."""
        return {
            "files": list(self.files),
            "lines": self.lines,
            "accepted": dict(self.accepted),
            "rejected": dict(self.rejected),
            "duplicates": dict(self.duplicates),
            "entities_masked": dict(sorted(self.entities_masked.items())),
            "errors": list(self.errors),
            "quarantine": self.quarantine,
            "notes": list(self.notes),
            "elapsed_seconds": round(self.elapsed, 3),
            "identity_tokens": self.identity_tokens,
            "linkage_encodings": self.linkage_encodings,
            "tokens_refused": dict(sorted(self.tokens_refused.items())),
        }


# ------------------------------------------------------------------ the pipeline
class _Batch:
    """Accumulates converted lines and flushes them to the store and quarantine."""

    def __init__(
        self,
        *,
        store: EdgeStore,
        detector: Scrubber,
        quarantine: Path,
        rates: Mapping[str, float],
    ) -> None:
        self.store = store
        self.detector = detector
        self.rates = rates
        self.quarantine_path = quarantine
        self.events: list[StoredEvent] = []
        self.consents: list[StoredConsent] = []
        self.messages: list[tuple[MessageLine, str, float]] = []
        self.rejects: list[dict[str, Any]] = []
        self.tokens: set[tuple[str, str, str]] = set()
        self.encodings: dict[str, str] = {}
        self.refused_tokens: Counter[str] = Counter()
        self.size = 0
        self._categories: dict[str | None, str | None] = {}

    def add(
        self,
        line: ParsedLine,
        *,
        subject: str,
        ts: float,
        tokens: Tokens = (),
        encoding: str | None = None,
    ) -> None:
        """Convert a valid line of ``subject`` (time ``ts``, epoch seconds) into the batch."""
        self.size += 1
        if encoding is not None:
            self.encodings[subject] = encoding
        for kind, token in tokens:
            self.tokens.add((subject, kind, token))
        if isinstance(line, EventLine):
            raw = line.category
            if raw not in self._categories:
                self._categories[raw] = normalize_category(raw)
            category = self._categories[raw]
            self.events.append(
                to_stored_event(line, subject=subject, ts=ts, category=category, rates=self.rates)
            )
        elif isinstance(line, MessageLine):
            self.messages.append((line, subject, ts))
        else:
            self.consents.append(to_stored_consent(line, subject))

    def reject(self, record: RawRecord, *, reason: str, path: Path) -> None:
        """Keep a rejected record (raw text included) for the quarantine file."""
        self.size += 1
        self.rejects.append(
            {
                "file": str(path),
                "line": record.number,
                "reason": reason,
                "raw": record.raw,
                "quarantined_at": datetime.now(UTC).isoformat(),
            }
        )

    def flush(self, report: IngestReport) -> None:
        """Write everything pending: quarantine first, messages (masked) last.

        If masking fails, the exception propagates after rejects, events and consents of the
        batch are safely written; re-ingesting the file is idempotent (ids are unique).
        """
        rejects, events, consents, messages = (
            self.rejects,
            self.events,
            self.consents,
            self.messages,
        )
        tokens, self.tokens = self.tokens, set()
        encodings, self.encodings = self.encodings, {}
        self.events, self.consents, self.messages, self.rejects = [], [], [], []
        self.size = 0
        if rejects:
            self._flush_rejects(rejects)
            report.quarantine = str(self.quarantine_path)
        if events:
            counts = self.store.add_events(events)
            report.accepted["event"] += counts.inserted
            report.duplicates["event"] += counts.duplicates
        if tokens:
            report.identity_tokens += self.store.add_identity_tokens(sorted(tokens))
        if encodings:
            report.linkage_encodings += self.store.put_linkage_encodings(sorted(encodings.items()))
        for reason, n in self.refused_tokens.items():
            report.tokens_refused[reason] = report.tokens_refused.get(reason, 0) + n
        self.refused_tokens.clear()
        if consents:
            counts = self.store.add_consents(consents)
            report.accepted["consent"] += counts.inserted
            report.duplicates["consent"] += counts.duplicates
        if messages:
            self._flush_messages(messages, report)

    def _flush_messages(
        self, messages: list[tuple[MessageLine, str, float]], report: IngestReport
    ) -> None:
        stored: list[StoredMessage] = []
        entities: Counter[str] = Counter(report.entities_masked)
        for lang in ("zh", "en"):
            group = [m for m in messages if m[0].lang == lang]
            if not group:
                continue
            results = self.detector.scrub_many([m[0].text for m in group], lang=lang)
            if len(results) != len(group):
                raise RuntimeError("scrubber returned a different number of results")
            for (line, subject, ts), result in zip(group, results, strict=True):
                counts = {k: int(v) for k, v in result.counts().items() if v}
                stored.append(
                    StoredMessage(
                        line.message_id, subject, line.channel.value, ts, line.lang,
                        result.text, counts,
                        line.labels.present() if line.labels is not None else {},
                    )
                )  # fmt: skip
                if counts:  # every scrubbed text counts, duplicates included
                    entities.update(counts)
        inserted = self.store.add_messages(stored)
        report.accepted["message"] += inserted.inserted
        report.duplicates["message"] += inserted.duplicates
        report.entities_masked = dict(entities)

    def _flush_rejects(self, rejects: list[dict[str, Any]]) -> None:
        self.quarantine_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.quarantine_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            for record in rejects:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def ingest_file(
    *,
    store: EdgeStore,
    path: Path,
    pseudonymizer: Pseudonymizer,
    detector: Scrubber,
    progress: ProgressCallback | None = None,
    quarantine: Path | None = None,
    now: datetime | None = None,
    resolver: IdentityResolver | None = None,
    rates: Mapping[str, float] | None = None,
) -> IngestReport:
    """Ingest one input file into the edge store.

    Parameters
    ----------
    store : EdgeStore
        The edge's store; receives events, *masked* messages and consent events.
    path : Path
        An input file with a registered reader: ``.jsonl`` / ``.ndjson`` (one JSON object
        per line) or ``.csv`` (a header row of field names); UTF-8 (with or without a
        byte-order mark) or GB18030/GBK, which adds a note to the report.
    pseudonymizer : Pseudonymizer
        Turns customer identifiers into pseudonyms under the tenant key.
    detector : Scrubber
        Masks PII in message text before it is stored (``privacy.PIIDetector``).
    progress : ProgressCallback or None
        Called with ``(bytes read, total bytes)`` after each batch.
    quarantine : Path or None
        Where rejected lines go; default ``quarantine.jsonl`` next to the store.
    now : datetime or None
        Reference time for the "not in the future" rule; default the current time.
    resolver : IdentityResolver or None
        Reuse an identity cache across files; default a new one for ``pseudonymizer``.
    rates : Mapping[str, float] or None
        CNY per one unit of each accepted currency (upper-case ISO 4217 codes; CNY is
        always 1); default ``client.convert.DEFAULT_CNY_RATES``, the packaged table the
        command line uses. Lines with an amount in another currency are rejected.

    Returns
    -------
    IngestReport
        Accepted, rejected and duplicate counts per kind, masked entities, first errors.

    Raises
    ------
    InputFileError
        If the file does not exist, its type is not supported, its text encoding is not
        UTF-8 or GB18030, or (CSV) its header is unusable.
    ValueError
        If a rate is not a positive finite number or a code not three capital letters.
    """
    started = time.perf_counter()
    rates = checked_rates(DEFAULT_CNY_RATES if rates is None else rates)
    reader = reader_for(path)
    detect_encoding(path)  # refuses unreadable text before anything is stored
    total = path.stat().st_size
    now_s = (now or datetime.now(UTC)).timestamp()
    resolver = resolver or IdentityResolver(pseudonymizer)
    report = IngestReport(files=[str(path)])
    if note := encoding_note(path):
        report.notes.append(f"{path.name}: {note}")
    batch = _Batch(
        store=store,
        detector=detector,
        quarantine=quarantine or store.path.parent / QUARANTINE_FILENAME,
        rates=rates,
    )
    with _gc_paused():
        for record in reader(path):
            report.lines += 1
            reason = _isolated(record, batch=batch, resolver=resolver, now=now_s)
            if reason is not None:
                kind = kind_of(record)
                report.rejected[kind] = report.rejected.get(kind, 0) + 1
                if len(report.errors) < MAX_REPORTED_ERRORS:
                    report.errors.append(f"line {record.number}: {reason}")
                batch.reject(record, reason=reason, path=path)
            if batch.size >= BATCH_LINES or len(batch.messages) >= BATCH_MESSAGES:
                batch.flush(report)
                gc.collect(0)
                if progress is not None:
                    progress(record.offset, total)
        batch.flush(report)
    if progress is not None:
        progress(total, total)
    report.elapsed = time.perf_counter() - started
    logger.info(
        "ingested %s: %d accepted, %d rejected, %d duplicate(s) in %.2fs",
        path.name,
        report.total_accepted,
        report.total_rejected,
        report.total_duplicates,
        report.elapsed,
    )
    return report


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause automatic cyclic garbage collection during a bulk load.

    Reference counting frees the per-line objects; the collector would otherwise walk the
    batch's tens of thousands of live records again and again (about a fifth of the CPU
    time). Young objects are collected after each batch instead.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: What one line can raise past validation (nesting deeper than the parser's recursion limit,
#: numbers or times a conversion cannot hold, text no codec takes): the line is quarantined.
LINE_FAILURES = (RecursionError, OverflowError, ValueError, UnicodeError)


def _isolated(
    record: RawRecord, *, batch: _Batch, resolver: IdentityResolver, now: float
) -> str | None:
    """Process one record so that nothing it contains can abort the file.

    Returns ``_process``'s reason, or, when the record raised one of ``LINE_FAILURES``, a
    reason naming the failure (never the content): the line is quarantined with it and the
    lines around it are kept.
    """
    try:
        return _process(record, batch=batch, resolver=resolver, now=now)
    except LINE_FAILURES as exc:
        logger.warning("line %d could not be processed (%s)", record.number, type(exc).__name__)
        return f"line could not be processed ({type(exc).__name__}); see the quarantine"


def _process(
    record: RawRecord, *, batch: _Batch, resolver: IdentityResolver, now: float
) -> str | None:
    """Validate and convert one record into ``batch``; return a rejection reason or None."""
    if record.problem is not None:
        return record.problem
    try:
        line = parse_record(record)
    except ValidationError as exc:
        return format_validation_error(exc)
    ts = line.ts.timestamp()
    problem = line_problem(line, ts=ts, now=now, rates=batch.rates)
    if problem is not None:
        return problem
    resolution = resolver.resolve(line.customer)
    if resolution.subject is None:
        return resolution.reason or "customer: cannot be resolved"
    batch.add(
        line,
        subject=resolution.subject,
        ts=ts,
        tokens=resolution.tokens,
        encoding=resolution.encoding,
    )
    for reason in resolution.refused_tokens:
        batch.refused_tokens[reason] += 1
    return None
