"""Build a simulation's ``TaskData``: read, mask, hold out, partition across edges, encode.

Text task: one or more labelled files (``simulations.datasets``), masked with the PII
detector as an edge would (unless the caller says they are already masked), grouped into
privacy units (``--group-field``), a stratified 20 % of units held out, the rest spread
over the edges (``simulations.split.partition_units``: IID, Dirichlet label skew or one
edge per column value), then encoded once for the text model.

Behaviour task: event logs in the edge input schema (JSON lines or CSV; or a synthetic
population) are split across edges by customer (each customer's lines go to one edge),
ingested by the real edge code (``client.ingest_file``: validation, bad lines counted and
quarantined with their line numbers, consent), and each edge builds its consented
subjects' examples (``client.training``-style: one example per subject, 20 % of subjects
held out by pseudonym hash). The held-out examples of all edges form the shared test set.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from client import EdgeStore, ingest_file
from client.edge import init_edge, open_tenant_key
from client.training import load_examples
from models import Channel, SequenceExample, SequenceSpec
from privacy import PIIConfig, PIIDetector, Pseudonymizer, create_key_file

from .datasets import TextDataset, mask_dataset, read_labeled_text
from .errors import SimulationError
from .learners import BehaviourLearner, TextLearner, subset
from .runs import TaskData
from .split import PartitionScheme, holdout_split, make_units, partition_units
from .synthetic import CHANNELS, PopulationConfig, write_population

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TextSource:
    """Where the text task's examples come from and how they are split.

    Parameters
    ----------
    paths : tuple[Path, ...]
        Labelled files (JSON lines or CSV), concatenated.
    text_field, label_field : str
        Field names.
    group_field, partition_field : str or None
        Optional user / customer field (unit-level DP, units never split) and the field
        of ``--partition column``.
    mask : bool
        Mask PII with the detector (False only for files that are already masked).
    lang : {"zh", "en"}
        Language for masking.
    """

    paths: tuple[Path, ...]
    text_field: str = "text"
    label_field: str = "label"
    group_field: str | None = None
    partition_field: str | None = None
    mask: bool = True
    lang: Literal["zh", "en"] = "zh"


@dataclass
class DataSummary:
    """What went into a run (reported in ``metrics.json``)."""

    examples: int = 0
    train_examples: list[int] = field(default_factory=list)
    test_examples: int = 0
    classes: list[str] = field(default_factory=list)
    label_histogram: dict[str, int] = field(default_factory=dict)
    entities_masked: dict[str, int] = field(default_factory=dict)
    ingest: dict[str, Any] = field(default_factory=dict)


def _read_all(source: TextSource) -> TextDataset:
    """Read every file and merge them (labels re-indexed over the union of names)."""
    parts = [
        read_labeled_text(
            path,
            text_field=source.text_field,
            label_field=source.label_field,
            group_field=source.group_field,
            partition_field=source.partition_field,
        )
        for path in source.paths
    ]
    if len(parts) == 1:
        return parts[0]
    names = tuple(sorted({n for p in parts for n in p.label_names}))
    index = {n: i for i, n in enumerate(names)}
    labels = np.concatenate([[index[p.label_names[i]] for i in p.labels] for p in parts])
    return TextDataset(
        texts=[t for p in parts for t in p.texts],
        labels=labels.astype(np.int64),
        label_names=names,
        groups=[g for p in parts for g in (p.groups or [])] or None,
        columns=[c for p in parts for c in (p.columns or [])] or None,
    )


def build_text_task(
    source: TextSource,
    *,
    edges: int,
    scheme: PartitionScheme,
    alpha: float,
    seed: int,
    test_fraction: float = 0.2,
    progress: Progress | None = None,
) -> tuple[TaskData, DataSummary]:
    """Return the text task's partitions and held-out set, and a summary.

    Raises
    ------
    SimulationError
        For unreadable or bad input (line numbers named), or a split that cannot fill
        the edges.
    """
    dataset = _read_all(source)
    if source.mask:
        detector = PIIDetector.create(PIIConfig(languages=(source.lang,)))
        dataset = mask_dataset(
            dataset,
            scrubber=detector,
            lang=source.lang,
            progress=None if progress is None else lambda d, t: progress("mask", d, t),
        )
    units = make_units(dataset.labels, dataset.groups)
    train_units, test_units = holdout_split(units.labels, test_fraction=test_fraction, seed=seed)
    columns = None
    if dataset.columns is not None:
        columns = [dataset.columns[int(m[0])] for m in units.members]
    parts = partition_units(
        train_units,
        labels=units.labels,
        edges=edges,
        scheme=scheme,
        seed=seed,
        alpha=alpha,
        columns=columns,
    )
    learner = TextLearner(num_classes=dataset.num_classes)
    encoded = learner.encode(dataset.texts, dataset.labels)
    partitions = [subset(encoded, units.examples(p)) for p in parts]
    test = subset(encoded, units.examples(test_units))
    summary = DataSummary(
        examples=len(dataset),
        train_examples=[len(p) for p in partitions],
        test_examples=len(test),
        classes=list(dataset.label_names),
        label_histogram=dataset.label_histogram(),
        entities_masked=dict(dataset.entity_counts),
    )
    level: Literal["example", "user"] = "example"
    return TaskData(learner=learner, partitions=partitions, test=test, level=level), summary


class _NoText:
    """Scrubber for partitions without messages (the behaviour task never stores text)."""

    def scrub_many(self, texts: Any, *, lang: str) -> list[Any]:  # noqa: ARG002
        raise SimulationError("message lines are skipped by the behaviour task")


def _edge_of(customer: str, *, seed: int, edges: int) -> int:
    digest = hashlib.sha256(f"{seed}:{customer}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % edges


def partition_event_logs(
    sources: Sequence[Path], out_dir: Path, *, edges: int, seed: int
) -> list[Path]:
    """Split event-log files across ``edges`` files by a seeded hash of the customer.

    JSON lines go by their ``customer`` object; CSV rows by their ``customer.*`` (or bare
    identifier) cells, each part keeping the header. Message lines are skipped (the
    behaviour task uses events and consents). Lines that do not parse are passed on, so the
    edge's ingestion reports them (by line number of the part file) instead of dropping them.

    Returns
    -------
    list[Path]
        One file per edge (``edge-0000.jsonl`` / ``.csv`` per the sources' type).

    Raises
    ------
    SimulationError
        If a source is missing or sources mix JSON lines and CSV.
    """
    kinds = {p.suffix.lower() == ".csv" for p in sources}
    if len(kinds) > 1:
        raise SimulationError("pass event logs of one type: all JSON lines or all CSV")
    for source in sources:
        if not source.is_file():
            raise SimulationError(f"dataset {source} does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    if kinds == {True}:
        return _partition_csv(sources, out_dir, edges=edges, seed=seed)
    paths = [out_dir / f"edge-{i:04d}.jsonl" for i in range(edges)]
    handles = [p.open("w", encoding="utf-8") for p in paths]
    try:
        for source in sources:
            with source.open(encoding="utf-8-sig") as lines:
                for raw in lines:
                    if not raw.strip():
                        continue
                    try:
                        line = json.loads(raw)
                        who = json.dumps(line.get("customer"), sort_keys=True)
                    except (json.JSONDecodeError, AttributeError):
                        handles[0].write(raw)  # the edge reports it
                        continue
                    if line.get("kind") == "message":
                        continue
                    handles[_edge_of(who, seed=seed, edges=edges)].write(raw)
    finally:
        for handle in handles:
            handle.close()
    return paths


def _partition_csv(sources: Sequence[Path], out_dir: Path, *, edges: int, seed: int) -> list[Path]:
    paths = [out_dir / f"edge-{i:04d}.csv" for i in range(edges)]
    handles = [p.open("w", encoding="utf-8", newline="") for p in paths]
    writers = [csv.writer(h) for h in handles]
    header: list[str] | None = None
    try:
        for source in sources:
            with source.open(encoding="utf-8-sig", newline="") as lines:
                reader = csv.reader(lines)
                this = next(reader, [])
                if header is None:
                    header = this
                    for writer in writers:
                        writer.writerow(header)
                elif this != header:
                    raise SimulationError(f"dataset {source.name}: header differs from the first")
                who_columns = [
                    i
                    for i, h in enumerate(header)
                    if h.strip().lower().startswith("customer")
                    or h.strip().lower() in ("phone", "email", "member_id", "device_id")
                ]
                kind_column = header.index("kind") if "kind" in header else None
                for row in reader:
                    if kind_column is not None and len(row) > kind_column:
                        if row[kind_column] == "message":
                            continue
                    who = "|".join(row[i] for i in who_columns if i < len(row))
                    writers[_edge_of(who, seed=seed, edges=edges)].writerow(row)
    finally:
        for handle in handles:
            handle.close()
    return paths


def build_behaviour_task(
    *,
    work: Path,
    datasets: Sequence[Path],
    users: int,
    edges: int,
    seed: int,
    progress: Progress | None = None,
) -> tuple[TaskData, DataSummary]:
    """Return the behaviour task's partitions (edge-built examples) and held-out set.

    Raises
    ------
    SimulationError
        If the input is missing or an edge ends up without training examples.
    """
    # 1. Input: the event logs, or a synthetic population.
    if work.exists():
        shutil.rmtree(work)
    at = datetime.now(UTC)
    if not datasets:
        population = PopulationConfig(users=users, days=30, seed=seed)
        write_population(population, work / "input")
        sources = [work / "input" / f"{c}.jsonl" for c in CHANNELS]
        at = population.end + timedelta(days=1)
    else:
        sources = list(datasets)
    # 2. Partition by customer, ingest on each edge, build consented examples.
    parts = partition_event_logs(sources, work / "parts", edges=edges, seed=seed)
    key = work / "tenant.key"
    create_key_file(key)
    spec = SequenceSpec()
    train: list[list[SequenceExample]] = []
    test: list[SequenceExample] = []
    summary = DataSummary()
    for i, part in enumerate(parts):
        edge_dir = work / "edges" / f"edge-{i:04d}"
        init_edge(edge_dir=edge_dir, name=f"edge-{i:04d}", channel=Channel.APP, tenant_key=key)
        with EdgeStore.for_edge_dir(edge_dir) as store:
            report = ingest_file(
                store=store,
                path=part,
                pseudonymizer=Pseudonymizer(open_tenant_key(store)),
                detector=_NoText(),
                now=at,
            )
            examples = load_examples(store, at=at, spec=spec)
        summary.ingest[edge_dir.name] = {
            "lines": report.lines,
            "rejected": sum(report.rejected.values()),
            "errors": list(report.errors),
        }
        if not examples.train:
            raise SimulationError(
                f"edge-{i:04d} has no training examples ({examples.subjects_included} "
                "consenting subjects); use fewer edges or more users"
            )
        train.append(examples.train)
        test.extend(examples.holdout)
        if progress is not None:
            progress("edges", i + 1, len(parts))
    if not test:
        raise SimulationError("no held-out subjects: use more users")
    learner = BehaviourLearner(max_len=spec.max_len)
    partitions = [learner.encode(p) for p in train]
    test_set = learner.encode(test)
    summary.examples = sum(len(p) for p in train) + len(test)
    summary.train_examples = [len(p) for p in partitions]
    summary.test_examples = len(test_set)
    summary.classes = ["no purchase", "purchase"]
    positives = int(sum(e.purchase for p in train for e in p) + sum(e.purchase for e in test))
    summary.label_histogram = {"no purchase": summary.examples - positives, "purchase": positives}
    return TaskData(learner=learner, partitions=partitions, test=test_set, level="user"), summary
