"""Labelled-text datasets from JSON lines or CSV, masked for PII as an edge would mask them.

``read_labeled_text`` reads one file: JSON lines (``.jsonl``, ``.ndjson``; one object per
line) or CSV (``.csv``; a header row of column names), UTF-8 (with or without a byte-order
mark) or GB18030, detected by ``client.encodings``. The caller names the text field, the
label field (any number of classes; the label set is read from the data, labels become
strings) and optionally a group field (a user / customer id: user-level DP and the
group-level test split) and a partition field (the column of ``--partition column``).
Problems are collected (up to ``MAX_PROBLEMS``) and raised together, each naming its line
and field, never a value: values may be personal data.

``mask_dataset`` masks every text with the PII detector (``privacy.PIIDetector.scrub_many``
in batches), so models only ever see masked text, as on an edge.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from client import InputFileError
from client.encodings import detect_encoding

from .errors import SimulationError

logger = logging.getLogger(__name__)

#: Problems collected before reading stops.
MAX_PROBLEMS = 5
#: Texts masked per ``scrub_many`` call (the progress bar advances per batch).
MASK_BATCH = 500
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
Progress = Callable[[int, int], None]


class _Masked(Protocol):
    @property
    def text(self) -> str:
        """The masked text."""
        ...

    def counts(self) -> dict[str, int]:
        """Entities masked, by type."""
        ...


class TextScrubber(Protocol):
    """What masking needs from a PII detector (``privacy.PIIDetector`` has this shape)."""

    def scrub_many(self, texts: Sequence[str], *, lang: Literal["zh", "en"]) -> Sequence[_Masked]:
        """Mask PII in each text, in input order."""
        ...


@dataclass(frozen=True)
class TextDataset:
    """A labelled text dataset held in memory.

    Parameters
    ----------
    texts : list[str]
        One text per example (masked once ``masked`` is true).
    labels : np.ndarray
        ``(n,)`` int64 indices into ``label_names``.
    label_names : tuple[str, ...]
        The classes, sorted (numerically when every label is an integer).
    groups : list[str] or None
        The group (user / customer) of each example, when a group field was named.
    columns : list[str] or None
        The partition-field value of each example, when a partition field was named.
    masked : bool
        Whether ``texts`` went through the PII detector.
    entity_counts : dict[str, int]
        Entities masked, by type (empty before masking).
    """

    texts: list[str]
    labels: np.ndarray
    label_names: tuple[str, ...]
    groups: list[str] | None = None
    columns: list[str] | None = None
    masked: bool = False
    entity_counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.label_names)

    def label_histogram(self) -> dict[str, int]:
        """Return the number of examples per class name."""
        counts = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.label_names, counts, strict=True)}


@dataclass(frozen=True)
class _Fields:
    text: str
    label: str
    group: str | None
    column: str | None

    def named(self) -> list[tuple[str, str]]:
        pairs = [("text", self.text), ("label", self.label)]
        pairs += [("group", self.group)] if self.group else []
        pairs += [("partition", self.column)] if self.column else []
        return [(role, name) for role, name in pairs if name]


class _Problems:
    """Collects line-numbered problems and raises them together."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)
        if len(self.items) >= MAX_PROBLEMS:
            self.raise_if_any()

    def raise_if_any(self) -> None:
        if self.items:
            more = " (reading stopped)" if len(self.items) >= MAX_PROBLEMS else ""
            raise SimulationError(f"dataset {self.path.name}: " + "; ".join(self.items) + more)


def _value(raw: Any) -> str | None:
    """Return a field's value as text; ``None`` when absent, null or blank."""
    if raw is None or isinstance(raw, dict | list):
        return None
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    return text if text.strip() else None


def _jsonl_rows(
    path: Path, encoding: str, problems: _Problems
) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding=encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                problems.add(f"line {number}: not valid JSON")
                continue
            if not isinstance(row, dict):
                problems.add(f"line {number}: not a JSON object")
                continue
            yield number, row


def _csv_rows(path: Path, encoding: str, fields: _Fields) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [f"{role} column {name!r}" for role, name in fields.named() if name not in header]
        if missing:
            raise SimulationError(
                f"dataset {path.name}: header (line 1) has no {', no '.join(missing)}; "
                f"columns are {', '.join(repr(h) for h in header) or 'none'}"
            )
        last = reader.line_num
        for row in reader:
            start, last = last + 1, reader.line_num
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            yield start, row


def _sort_labels(names: set[str]) -> tuple[str, ...]:
    try:
        return tuple(sorted(names, key=lambda n: (int(n), n)))
    except ValueError:
        return tuple(sorted(names))


def read_labeled_text(
    path: Path,
    *,
    text_field: str,
    label_field: str,
    group_field: str | None = None,
    partition_field: str | None = None,
) -> TextDataset:
    """Read a labelled text file (JSON lines or CSV) into memory, unmasked.

    Parameters
    ----------
    path : Path
        The file; ``.jsonl`` / ``.ndjson`` or ``.csv``.
    text_field, label_field : str
        Names of the text and label fields (CSV columns).
    group_field : str or None
        Field holding each example's user / customer id (optional).
    partition_field : str or None
        Field whose value decides the edge in ``--partition column`` (optional).

    Returns
    -------
    TextDataset
        Texts (not yet masked), label indices and the sorted label names.

    Raises
    ------
    SimulationError
        If the file is missing, of an unknown type, undecodable, or has lines with missing
        or empty fields (each named by line number and field), or fewer than two classes.
    """
    if not path.is_file():
        raise SimulationError(f"dataset {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (*_JSONL_SUFFIXES, ".csv"):
        raise SimulationError(
            f"dataset {path.name}: unknown file type {suffix or '(none)'}; use .jsonl or .csv"
        )
    try:
        encoding = detect_encoding(path)
    except InputFileError as exc:
        raise SimulationError(f"dataset {path.name}: {exc}") from exc
    fields = _Fields(text_field, label_field, group_field, partition_field)
    problems = _Problems(path)
    rows = (
        _csv_rows(path, encoding, fields)
        if suffix == ".csv"
        else _jsonl_rows(path, encoding, problems)
    )
    texts: list[str] = []
    labels: list[str] = []
    extra: dict[str, list[str]] = {"group": [], "partition": []}
    for number, row in rows:
        values = {role: _value(row.get(name)) for role, name in fields.named()}
        absent = [f"{role} field {name!r}" for role, name in fields.named() if values[role] is None]
        if absent:
            problems.add(f"line {number}: missing or empty {', '.join(absent)}")
            continue
        texts.append(str(values["text"]))
        labels.append(str(values["label"]))
        for role in ("group", "partition"):
            if role in values:
                extra[role].append(str(values[role]))
    problems.raise_if_any()
    return _dataset(path, texts, labels, extra)


def _dataset(
    path: Path, texts: list[str], labels: list[str], extra: dict[str, list[str]]
) -> TextDataset:
    names = _sort_labels(set(labels))
    if len(names) < 2:
        raise SimulationError(
            f"dataset {path.name}: {len(texts)} examples with {len(names)} class(es); "
            "a classifier needs at least two label values"
        )
    index = {name: i for i, name in enumerate(names)}
    logger.info("dataset: %d examples, %d classes", len(texts), len(names))
    return TextDataset(
        texts=texts,
        labels=np.array([index[label] for label in labels], dtype=np.int64),
        label_names=names,
        groups=extra["group"] or None,
        columns=extra["partition"] or None,
    )


def mask_dataset(
    dataset: TextDataset,
    *,
    scrubber: TextScrubber,
    lang: Literal["zh", "en"] = "zh",
    progress: Progress | None = None,
) -> TextDataset:
    """Mask PII in every text, as an edge does before anything is stored or trained.

    Parameters
    ----------
    dataset : TextDataset
        The unmasked dataset.
    scrubber : TextScrubber
        The PII detector (``privacy.PIIDetector``).
    lang : {"zh", "en"}
        Language of the texts.
    progress : Callable[[int, int], None] or None
        Called with ``(texts masked, total)`` after each batch.

    Returns
    -------
    TextDataset
        The same dataset with masked texts and the entity counts.
    """
    if dataset.masked:
        return dataset
    masked: list[str] = []
    totals: Counter[str] = Counter()
    for start in range(0, len(dataset.texts), MASK_BATCH):
        for result in scrubber.scrub_many(dataset.texts[start : start + MASK_BATCH], lang=lang):
            masked.append(result.text)
            totals.update(result.counts())
        if progress is not None:
            progress(len(masked), len(dataset.texts))
    logger.info("masked %d texts: %d entities", len(masked), sum(totals.values()))
    return replace(dataset, texts=masked, masked=True, entity_counts=dict(sorted(totals.items())))
