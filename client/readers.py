"""Input readers: files -> raw records -> validated, clean input lines; PII-safe messages.

A reader turns one file into ``RawRecord`` items; readers are registered by file suffix
(``register_reader``): JSON lines (``.jsonl``, ``.ndjson``, bytes payloads) and CSV
(``.csv``, mapping payloads built from the header). ``client.encodings`` detects each file's
text encoding (UTF-8 with or without a byte-order mark, else GB18030). ``parse_record``
validates a record against ``client.schemas.InputLine`` and ``line_problem`` applies the
cleaning rules beyond the schema (amounts and currencies included). Errors are formatted
from field locations and error types only (``format_validation_error``), never from input
values, because those may hold identifiers or message text.

Why this module is a little above 400 lines (STYLE H14): the readers and the PII-safe error
formatting share the rule that no input value reaches a message.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from consent import PurposeNotRegisteredError, parse_purpose
from models import EventType

from .convert import DEFAULT_CNY_RATES, rate_problem
from .encodings import decode_line, detect_encoding
from .errors import InputFileError
from .schemas import ConsentLine, CustomerRef, EventLine, InputLine, MessageLabels, MessageLine

logger = logging.getLogger(__name__)

#: The kinds of input line (``kind`` tags of ``InputLine``).
KINDS = ("event", "message", "consent")
ParsedLine = EventLine | MessageLine | ConsentLine
_ADAPTER: TypeAdapter[ParsedLine] = TypeAdapter(InputLine)
#: Lines dated further than this into the future (clock skew) are refused.
MAX_FUTURE_SECONDS = 24 * 3600.0
_AMOUNT_REQUIRED = frozenset({EventType.PURCHASE, EventType.REFUND})


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a microsecond per line
class RawRecord:
    """One input record as read from a file, before validation.

    Parameters
    ----------
    number : int
        1-based line number in the file.
    payload : bytes or dict
        JSON bytes (JSONL) or an already decoded mapping (e.g. a CSV row).
    offset : int
        Bytes of the file consumed after this record (for progress).
    text : str or None
        The record's source text when ``payload`` is not the text itself.
    problem : str or None
        Why the reader already knows the record is unusable (e.g. a CSV row with the wrong
        number of cells): the record is rejected with this reason, unvalidated.
    """

    number: int
    payload: bytes | dict[str, Any]
    offset: int
    text: str | None = None
    problem: str | None = None

    @property
    def raw(self) -> str:
        """The record's text, for the quarantine file only (decoded on demand)."""
        if self.text is not None:
            return self.text
        if isinstance(self.payload, bytes):
            return self.payload.decode("utf-8", errors="backslashreplace")
        return json.dumps(self.payload, ensure_ascii=False)


Reader = Callable[[Path], Iterator[RawRecord]]


# ------------------------------------------------------------------ JSON lines
def read_jsonl(path: Path) -> Iterator[RawRecord]:
    """Yield the non-blank lines of a JSON-lines file as records with UTF-8 bytes payloads."""
    encoding = detect_encoding(path)
    offset = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            offset += len(line)
            if number == 1 and encoding == "utf-8-sig":
                line = line.removeprefix(codecs.BOM_UTF8)
            stripped = line.strip()
            if stripped:
                if encoding == "gb18030":  # per line: UTF-8 lines stay UTF-8
                    stripped = decode_line(stripped, encoding).encode("utf-8")
                yield RawRecord(number, stripped, offset)


# ------------------------------------------------------------------ CSV
#: Customer identifier columns: ``customer.<key>`` or the bare ``<key>``.
_CUSTOMER_KEYS = frozenset(CustomerRef.model_fields)
_FIELD_KEYS = (
    frozenset(EventLine.model_fields)
    | frozenset(MessageLine.model_fields)
    | frozenset(ConsentLine.model_fields)
) - {"customer", "labels"}
#: A message's agent labels: columns ``labels.<head>`` or the bare ``intent`` / ``emotion`` /
#: ``urgency``.
_LABEL_KEYS = frozenset(MessageLabels.model_fields)
#: A row without a ``kind`` cell takes its kind from its (only) id column.
_ID_KINDS: Mapping[str, str] = {
    "event_id": "event",
    "message_id": "message",
    "consent_id": "consent",
}
_Column = tuple[bool, str] | None  # (customer identifier?, key); None: an unnamed column


def _column_label(name: str, position: int) -> str:
    return name if _SAFE_KEY.match(name.replace(".", "_")) else f"<column {position}>"


def _csv_columns(header: list[str], path: Path) -> list[_Column]:
    """Map header cells to targets; refuse unknown or repeated names (whole file)."""
    columns: list[_Column] = []
    unknown: list[str] = []
    for position, cell in enumerate(header, start=1):
        name = cell.strip().lower()
        key = name.removeprefix("customer.")
        target: _Column = None
        label = name.removeprefix("labels.")
        if key in _CUSTOMER_KEYS:
            target = (True, key)
        elif label in _LABEL_KEYS:
            target = (False, f"labels.{label}")
        elif name in _FIELD_KEYS:
            target = (False, name)
        elif name:
            unknown.append(_column_label(name, position))
            continue
        if target is not None and target in columns:
            label = _column_label(name, position)
            raise InputFileError(path, f"line 1: column {label} appears twice")
        columns.append(target)
    if unknown:
        raise InputFileError(
            path,
            f"line 1: unknown column(s) {', '.join(unknown)}; use the JSON field names, "
            "customer identifiers as customer.phone (or phone), customer.email, ...",
        )
    return columns


@dataclass(frozen=True, slots=True)
class _Layout:
    """A payload key per CSV column: the field name, ``customer.<id>``, or ``#<n>`` if unnamed."""

    keys: tuple[str, ...]
    customer: tuple[str, ...]
    unnamed: tuple[str, ...]

    @classmethod
    def of(cls, columns: list[_Column]) -> _Layout:
        keys = tuple(
            f"#{i}" if c is None else f"customer.{c[1]}" if c[0] else c[1]
            for i, c in enumerate(columns, start=1)
        )
        return cls(
            keys=keys,
            customer=tuple(k for k in keys if k.startswith("customer.")),
            unnamed=tuple(k for k in keys if k.startswith("#")),
        )


def _csv_payload(row: list[str], layout: _Layout) -> tuple[dict[str, Any], str | None]:
    """Return a row's payload (empty cells left out) and a problem, if the row has one.

    A row with a problem still gets the payload of its cells, so its kind can be counted.
    """
    n, width = len(row), len(layout.keys)
    problem = None if n == width else f"row has {n} cells; the header has {width}"
    payload: dict[str, Any] = {
        k: v for k, v in zip(layout.keys, map(str.strip, row), strict=False) if v
    }
    customer = {k[9:]: v for k in layout.customer if (v := payload.pop(k, None))}
    for key in layout.unnamed:
        if payload.pop(key, None) is not None and problem is None:
            problem = f"column {key[1:]}: a value under a column without a name"
    if customer:
        payload["customer"] = customer
    labels = {k[7:]: payload.pop(k) for k in list(payload) if k.startswith("labels.")}
    if labels:
        payload["labels"] = labels
    if "currency" in payload:
        payload["currency"] = payload["currency"].upper()
    if "kind" not in payload:
        kinds = [kind for column, kind in _ID_KINDS.items() if column in payload]
        if len(kinds) == 1:
            payload["kind"] = kinds[0]
    return payload, problem


def read_csv(path: Path) -> Iterator[RawRecord]:
    """Yield the data rows of a CSV file as records with mapping payloads.

    The first line is the header: JSON field names, customer identifiers as
    ``customer.phone`` or ``phone`` (likewise ``email``, ``id_number``, ``account_id``).
    Empty cells are absent fields; a row without a ``kind`` takes it from its only id
    column. Line numbers count the header as line 1; a quoted cell may span lines (the
    record's number is its first line). Blank rows are skipped.

    Raises
    ------
    InputFileError
        If the header is missing, malformed, names an unknown column or one twice.
    """
    encoding = detect_encoding(path)
    with path.open("rb") as handle:
        text = (decode_line(raw, encoding) for raw in handle)  # per line (see decode_line)
        pending: list[str] = []  # the physical lines of the record being read
        lines = (pending.append(line) or line for line in text)  # type: ignore[func-returns-value]
        rows = csv.reader(lines, strict=True)
        try:
            header = next(rows)
        except StopIteration:
            return
        except csv.Error:
            raise InputFileError(path, "line 1: malformed CSV header") from None
        layout = _Layout.of(_csv_columns(header, path))
        pending.clear()
        while True:
            number = rows.line_num + 1
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error:
                payload: dict[str, Any] = {}
                problem: str | None = "malformed CSV quoting"
            else:
                if not "".join(row).strip():
                    pending.clear()
                    continue
                payload, problem = _csv_payload(row, layout)
            raw = "".join(pending).rstrip("\r\n")
            pending.clear()
            # the offset is where the buffered reader stands: exact enough for progress
            yield RawRecord(number, payload, handle.tell(), raw, problem)


_READERS: dict[str, Reader] = {".jsonl": read_jsonl, ".ndjson": read_jsonl, ".csv": read_csv}


def register_reader(suffix: str, reader: Reader, *, force: bool = False) -> None:
    """Register ``reader`` for files ending in ``suffix`` (e.g. ``".csv"``).

    Raises
    ------
    ValueError
        If the suffix does not start with a dot, or already has a reader and not ``force``.
    """
    key = suffix.lower()
    if not key.startswith(".") or len(key) < 2:
        raise ValueError(f"suffix must look like '.csv', not {suffix!r}")
    if key in _READERS and not force:
        raise ValueError(f"a reader for {key} is already registered; pass force=True")
    _READERS[key] = reader


def reader_for(path: Path) -> Reader:
    """Return the reader for ``path``.

    Raises
    ------
    InputFileError
        If the file does not exist or no reader handles its suffix (the known ones listed).
    """
    if not path.is_file():
        raise InputFileError(path, "no such file")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(_READERS))
        raise InputFileError(path, f"unsupported file type; use one of {known}")
    return reader


def parse_record(record: RawRecord) -> ParsedLine:
    """Validate one record into an input line.

    Raises
    ------
    pydantic.ValidationError
        If the record does not fit ``InputLine`` (format it with ``format_validation_error``).
    """
    if isinstance(record.payload, bytes):
        return _ADAPTER.validate_json(record.payload)
    return _ADAPTER.validate_python(record.payload)


def line_problem(
    line: ParsedLine,
    *,
    ts: float,
    now: float,
    rates: Mapping[str, float] = DEFAULT_CNY_RATES,
) -> str | None:
    """Apply the cleaning rules beyond the schema; return a reason or ``None``.

    Parameters
    ----------
    line : ParsedLine
        A line that passed ``parse_record``.
    ts, now : float
        The line's time and the reference time, UTC epoch seconds.
    rates : Mapping[str, float]
        CNY per unit of each accepted currency: an event in another currency is rejected.

    Returns
    -------
    str or None
        ``field: reason`` (no input values), or ``None`` when the line is clean.
    """
    if ts > now + MAX_FUTURE_SECONDS:
        return "ts: more than 24 hours in the future"
    if isinstance(line, EventLine):
        if line.type in _AMOUNT_REQUIRED and line.amount is None:
            return "amount: required for purchase and refund events"
        if line.type is EventType.RATING and line.rating is None:
            return "rating: required for rating events"
        if line.amount is not None and line.amount < 0 and line.type is not EventType.REFUND:
            return "amount: negative amounts are only allowed on refund events"
        if line.currency not in rates:
            return rate_problem(line.currency, rates)
    if isinstance(line, ConsentLine):
        try:
            parse_purpose(line.purpose)
        except PurposeNotRegisteredError as exc:
            return "purpose: not a registered purpose; known: " + ", ".join(exc.known)
    return None


def kind_of(record: RawRecord) -> str:
    """Best-effort kind of a (rejected) record, ``"unknown"`` when it cannot be told."""
    payload: Any = record.payload
    if isinstance(payload, bytes):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit
            return "unknown"
    kind = payload.get("kind") if isinstance(payload, dict) else None
    return kind if isinstance(kind, str) and kind in KINDS else "unknown"


# ------------------------------------------------------------------ PII-safe errors
#: Field names echoed in reasons: identifier-like, and without long digit runs (phone-like).
_SAFE_KEY = re.compile(r"^(?!.*\d{5})[A-Za-z_][A-Za-z0-9_]{0,39}$")
_OWN_MESSAGES: dict[str, str] = {
    "union_tag_invalid": "unknown kind; expected one of event, message, consent",
    "union_tag_not_found": "missing 'kind'; expected one of event, message, consent",
    "extra_forbidden": "unexpected field",
    "missing": "required field is missing",
    "dict_type": "a JSON object is required",
    "model_type": "a JSON object is required",
    "model_attributes_type": "a JSON object is required",
}


def _safe_loc(loc: tuple[int | str, ...]) -> str:
    """Render an error location, dropping the union tag and masking odd key names."""
    parts = list(loc)
    if parts and parts[0] in KINDS:
        parts = parts[1:]
    rendered: list[str] = []
    for part in parts:
        text = str(part)
        ok = isinstance(part, int) or _SAFE_KEY.match(text) is not None
        rendered.append(text if ok else "<key>")
    return ".".join(rendered)


def _safe_message(error: Any) -> str:
    """Return an error message that cannot echo the offending input value."""
    kind = str(error.get("type", "invalid"))
    if kind in _OWN_MESSAGES:
        return _OWN_MESSAGES[kind]
    message = str(error.get("msg", kind))
    if kind == "json_invalid":
        return "invalid JSON" + message.removeprefix("Invalid JSON")
    value = error.get("input")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 2 and text in message:
            return f"invalid value ({kind})"
    return message


def format_validation_error(exc: ValidationError, *, limit: int = 3) -> str:
    """Format a pydantic error as ``field: reason; ...`` without any input values.

    Parameters
    ----------
    exc : ValidationError
        The error raised while validating one line.
    limit : int
        Maximum number of problems listed; the rest are counted.

    Returns
    -------
    str
        One line naming field paths and reasons.
    """
    errors = exc.errors(include_url=False)
    parts: list[str] = []
    for error in errors[:limit]:
        loc = _safe_loc(tuple(error.get("loc", ())))
        message = _safe_message(error)
        parts.append(f"{loc}: {message}" if loc else message)
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more problem(s)")
    return "; ".join(parts)
