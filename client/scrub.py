"""The edge's scrub stage: mask PII in JSON lines, and the ``fedprofile scrub`` command.

Each input line is a JSON object with a string ``"text"``. The output object keeps every
input key in order, with ``"text"`` replaced by the masked text, plus ``"entities"``: one
``{"type", "start", "end", "score"}`` per masked span (offsets in characters into the
original text). Raw values never appear in the output, in errors or in logs. Other keys
pass through unchanged, so callers must not put raw identifiers there.

Lines are processed in batches; a bad line (not JSON, not an object, no string
``"text"``) becomes an error result that carries its 1-based line number and a reason
that never quotes the input. Blank lines are skipped.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from privacy import PIIDetector

logger = logging.getLogger(__name__)

Language = Literal["zh", "en"]

#: Lines analysed per batch; output is flushed after each batch.
DEFAULT_BATCH_SIZE = 256
#: Exit code of ``scrub`` when at least one input line was rejected.
EXIT_LINES_REJECTED = 3
#: Key of the input text in each line.
TEXT_KEY = "text"
#: Key added to each output object.
ENTITIES_KEY = "entities"
#: Longest text scrubbed in one line (a customer message; longer input is refused, not cut).
MAX_TEXT_CHARS = 100_000


@dataclass(frozen=True, slots=True)
class ScrubLineResult:
    """The outcome of one input line.

    Parameters
    ----------
    line_no : int
        1-based number of the input line.
    record : dict or None
        The output object (masked text and entities), or ``None`` for a rejected line.
    error : str or None
        Why the line was rejected (never quotes the input), or ``None``.
    """

    line_no: int
    record: dict[str, Any] | None
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether the line was scrubbed (rather than rejected)."""
        return self.error is None

    def to_json(self) -> str:
        """Return the output object as one JSON line (no trailing newline).

        Raises
        ------
        ValueError
            If the line was rejected.
        """
        if self.record is None:
            raise ValueError(f"line {self.line_no} was rejected and has no output")
        return json.dumps(self.record, ensure_ascii=False)


def _parse(line: str) -> dict[str, Any] | str:
    """Return the JSON object of a line, or the reason it is rejected.

    Besides malformed JSON, a line is rejected (alone; the others go on) when its text is
    longer than ``MAX_TEXT_CHARS`` or when it holds a lone surrogate (``"\ud800"``: valid
    JSON escapes, but no UTF-8 output can carry it).
    """
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return "not valid JSON"
    if not isinstance(value, dict):
        return "not a JSON object"
    text = value.get(TEXT_KEY)
    if not isinstance(text, str):
        return f"missing string field {TEXT_KEY!r}"
    if len(text) > MAX_TEXT_CHARS:
        return f"text longer than {MAX_TEXT_CHARS:,} characters; split it"
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return "not valid Unicode (a lone surrogate escape such as \\ud800)"
    return value


def scrub_stream(
    lines: Iterable[str],
    *,
    detector: PIIDetector,
    lang: Language,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[ScrubLineResult]:
    """Scrub JSON lines, yielding one result per non-blank line, in input order.

    Parameters
    ----------
    lines : iterable of str
        JSON lines (trailing newlines allowed); blank lines are skipped.
    detector : PIIDetector
        A detector built for ``lang``.
    lang : {"zh", "en"}
        Language of the texts.
    batch_size : int
        Lines analysed together.

    Yields
    ------
    ScrubLineResult
        The masked object, or an error with the line number.

    Raises
    ------
    ValueError
        If ``batch_size`` is below 1 or ``lang`` is not a language of ``detector``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    numbered = ((no, line) for no, line in enumerate(lines, start=1) if line.strip())
    while batch := list(islice(numbered, batch_size)):
        parsed = [(no, _parse(line)) for no, line in batch]
        texts = [value[TEXT_KEY] for _, value in parsed if isinstance(value, dict)]
        masked = iter(detector.scrub_many(texts, lang=lang))
        for no, value in parsed:
            if isinstance(value, str):
                yield ScrubLineResult(line_no=no, record=None, error=value)
                continue
            result = next(masked)
            record = {k: (result.text if k == TEXT_KEY else v) for k, v in value.items()}
            record[ENTITIES_KEY] = [
                {"type": e.type, "start": e.start, "end": e.end, "score": e.score}
                for e in result.entities
            ]
            yield ScrubLineResult(line_no=no, record=record, error=None)


def _progress(stream: IO[str]) -> Progress:
    """Build a spinner with a line count on stderr, shown only when stderr is a terminal."""
    console = Console(file=stream, stderr=True)
    return Progress(
        SpinnerColumn(),
        TextColumn("scrubbing: {task.completed} lines"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not stream.isatty(),
    )


def scrub_command(
    lang: Annotated[
        Language, typer.Option("--lang", help="Language of the texts: zh or en.")
    ] = "zh",
    json_errors: Annotated[
        bool,
        typer.Option(
            "--json-errors",
            help='Report rejected lines on stderr as JSON objects {"line": N, "reason": "..."}.',
        ),
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, max=100_000, help="Lines analysed per batch."),
    ] = DEFAULT_BATCH_SIZE,
) -> None:
    """Mask PII in JSON lines read from stdin and write them to stdout.

    Input: one JSON object per line with a string "text"; other keys pass through unchanged.

    Output: the same object, "text" masked (<CN_MOBILE>, <PERSON>, ...), plus "entities".

    Each entity is {type, start, end, score}; raw values are never printed.

    Rejected lines are reported on stderr as "line N: reason" and skipped.

    Exit code 0 when every line was scrubbed, 3 when any line was rejected.
    """
    from privacy import PIIConfig, PIIDetector  # heavy (Presidio): only when the command runs

    stdin, stdout, stderr = sys.stdin, sys.stdout, sys.stderr
    _use_utf8(stdin, errors="replace")
    _use_utf8(stdout, errors="strict")
    detector = PIIDetector.create(PIIConfig(languages=(lang,)))
    scrubbed = rejected = 0
    totals: Counter[str] = Counter()
    with _progress(stderr) as progress:
        task = progress.add_task("scrub", total=None)
        pending: list[str] = []
        for result in scrub_stream(stdin, detector=detector, lang=lang, batch_size=batch_size):
            if result.record is None:
                rejected += 1
                _report(stderr, result, as_json=json_errors)
            else:
                scrubbed += 1
                pending.append(result.to_json())
                totals.update(entity["type"] for entity in result.record[ENTITIES_KEY])
            if len(pending) >= batch_size:
                _flush(stdout, pending)
            progress.advance(task)
        _flush(stdout, pending)
    logger.info("scrubbed %d lines, rejected %d, masked %s", scrubbed, rejected, dict(totals))
    if rejected:
        raise typer.Exit(EXIT_LINES_REJECTED)


def _use_utf8(stream: IO[str], *, errors: str) -> None:
    """Switch a standard text stream to UTF-8 (undecodable input becomes U+FFFD)."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(encoding="utf-8", errors=errors)


def _flush(stream: IO[str], pending: list[str]) -> None:
    """Write and flush the buffered output lines."""
    if pending:
        stream.write("\n".join(pending) + "\n")
        pending.clear()
    stream.flush()


def _report(stream: IO[str], result: ScrubLineResult, *, as_json: bool) -> None:
    """Report one rejected line on stderr (number and reason only)."""
    if as_json:
        stream.write(json.dumps({"line": result.line_no, "reason": result.error}) + "\n")
    else:
        stream.write(f"line {result.line_no}: {result.error}\n")
    stream.flush()
