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
subjects' examples with the fixed time split a deployed edge uses
(``client.learning.store_source.behaviour_examples``: features before the cutoff, labels in
the window after it, one example per subject, a share of subjects held out by pseudonym
hash). The held-out examples of all edges form the shared test set. Event logs that hold no
consent line at all (a public purchase log) are research data: every customer is treated as
having agreed to model training, and the report says so.

Each ``TaskData`` encodes its examples for whatever learner a setting's run config asks
for (e.g. a smaller text vocabulary under DP), once per architecture.
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
import torch
from torch.utils.data import TensorDataset

from client import EdgeStore, ingest_file
from client.edge import init_edge, open_tenant_key
from client.identity import IdentityResolver
from client.learning.store_source import behaviour_examples, behaviour_learner
from client.schemas import CustomerRef
from models import Channel, RunConfig
from models.behaviour import BehaviourExample
from models.learners import Learner, TextLearner, text_config
from privacy import PIIConfig, PIIDetector, Pseudonymizer, create_key_file

from .datasets import TextDataset, mask_dataset, read_labeled_text
from .errors import SimulationError
from .oracle import oracle_probabilities
from .split import PartitionScheme, holdout_split, make_units, partition_units
from .synthetic import CHANNELS, PopulationConfig, make_users, write_population

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
    cutoff: str | None = None
    label_window_days: float | None = None
    consent: str | None = None


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


def subset(data: TensorDataset, indices: np.ndarray) -> TensorDataset:
    """Return the rows ``indices`` of ``data`` as a new dataset."""
    index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
    return TensorDataset(*(t[index] for t in data.tensors))


@dataclass
class TextTask:
    """The text task's data: masked texts, labels, edges' example indices, held-out indices.

    Parameters
    ----------
    texts : list[str]
        Every (masked) text.
    labels : np.ndarray
        Class index of each text.
    parts : list[np.ndarray]
        Each edge's training example indices.
    test_indices : np.ndarray
        The shared held-out example indices.
    num_classes : int
        Classes of the label (the text model's head size).
    level : {"example", "user"}
        What one DP-SGD example protects.
    """

    texts: list[str]
    labels: np.ndarray
    parts: list[np.ndarray]
    test_indices: np.ndarray
    num_classes: int
    level: Literal["user", "example"] = "example"
    task: Literal["behaviour", "text"] = "text"
    _encoded: dict[tuple[int, int], TensorDataset] = field(default_factory=dict, repr=False)

    @property
    def edges(self) -> int:
        """Number of edges."""
        return len(self.parts)

    def learner(self, config: RunConfig) -> Learner:
        """Return the text model of ``config`` with one head (``label``) sized to the classes."""
        return TextLearner(text_config(config, heads={"label": self.num_classes}))

    def _all(self, learner: Learner) -> TensorDataset:
        assert isinstance(learner, TextLearner)
        key = (learner.config.vocabulary, learner.config.buckets)
        if key not in self._encoded:
            self._encoded[key] = learner.encode(self.texts, {"label": self.labels})
        return self._encoded[key]

    def partitions(self, learner: Learner) -> list[TensorDataset]:
        """Each edge's training examples encoded for ``learner``."""
        encoded = self._all(learner)
        return [subset(encoded, part) for part in self.parts]

    def holdouts(self, learner: Learner) -> list[TensorDataset] | None:
        """Return ``None``: text edges evaluate on training data (the server scores the test)."""
        del learner
        return None

    def test(self, learner: Learner) -> TensorDataset:
        """The shared held-out set encoded for ``learner``."""
        return subset(self._all(learner), self.test_indices)

    def train_texts(self) -> tuple[list[str], np.ndarray]:
        """Pooled training texts and labels (the centralized baselines)."""
        indices = np.sort(np.concatenate(self.parts))
        return [self.texts[i] for i in indices], self.labels[indices]

    def test_texts(self) -> tuple[list[str], np.ndarray]:
        """Held-out texts and labels."""
        return [self.texts[i] for i in self.test_indices], self.labels[self.test_indices]


def build_text_task(
    source: TextSource,
    *,
    edges: int,
    scheme: PartitionScheme,
    alpha: float,
    seed: int,
    test_fraction: float = 0.2,
    progress: Progress | None = None,
) -> tuple[TextTask, DataSummary]:
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
    task = TextTask(
        texts=list(dataset.texts),
        labels=np.asarray(dataset.labels, dtype=np.int64),
        parts=[units.examples(p) for p in parts],
        test_indices=units.examples(test_units),
        num_classes=dataset.num_classes,
        level="user" if units.grouped else "example",
    )
    summary = DataSummary(
        examples=len(dataset),
        train_examples=[len(p) for p in task.parts],
        test_examples=len(task.test_indices),
        classes=list(dataset.label_names),
        label_histogram=dataset.label_histogram(),
        entities_masked=dict(dataset.entity_counts),
    )
    return task, summary


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


@dataclass
class BehaviourTask:
    """The behaviour task's data: each edge's training and held-out examples.

    Parameters
    ----------
    train, holdout : list[list[BehaviourExample]]
        Per edge.
    oracle : dict[str, float]
        Bayes-optimal P(purchase) per held-out pseudonym (synthetic data only).
    """

    train: list[list[BehaviourExample]]
    holdout: list[list[BehaviourExample]]
    oracle: dict[str, float] = field(default_factory=dict)
    level: Literal["user", "example"] = "user"
    task: Literal["behaviour", "text"] = "behaviour"
    _encoded: dict[tuple[int, int], tuple[list[TensorDataset], list[TensorDataset]]] = field(
        default_factory=dict, repr=False
    )

    @property
    def edges(self) -> int:
        """Number of edges."""
        return len(self.train)

    def learner(self, config: RunConfig) -> Learner:
        """Return the behaviour model of ``config``."""
        return behaviour_learner(config)

    def _both(self, learner: Learner) -> tuple[list[TensorDataset], list[TensorDataset]]:
        from models.learners import BehaviourLearner

        assert isinstance(learner, BehaviourLearner)
        key = (learner.config.hidden, learner.config.sequence)
        if key not in self._encoded:
            self._encoded[key] = (
                [learner.encode(e) for e in self.train],
                [learner.encode(e) for e in self.holdout],
            )
        return self._encoded[key]

    def partitions(self, learner: Learner) -> list[TensorDataset]:
        """Each edge's training examples."""
        return self._both(learner)[0]

    def holdouts(self, learner: Learner) -> list[TensorDataset] | None:
        """Each edge's own held-out subjects (their union is the test set)."""
        return self._both(learner)[1]

    def test(self, learner: Learner) -> TensorDataset:
        """All edges' held-out examples."""
        from .runs import pooled

        return pooled(self._both(learner)[1])

    def held_out(self) -> list[BehaviourExample]:
        """All held-out examples, in test-set order."""
        return [e for part in self.holdout for e in part]

    def pooled_train(self) -> list[BehaviourExample]:
        """All training examples."""
        return [e for part in self.train for e in part]


def _time_range(edge_dirs: Sequence[Path]) -> tuple[float, float] | None:
    ranges = []
    for edge_dir in edge_dirs:
        with EdgeStore.for_edge_dir(edge_dir) as store:
            found = store.event_time_range()
            if found is not None:
                ranges.append(found)
    if not ranges:
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def _has_consents(edge_dirs: Sequence[Path]) -> bool:
    for edge_dir in edge_dirs:
        with EdgeStore.for_edge_dir(edge_dir) as store:
            if store.count("consents"):
                return True
    return False


def build_behaviour_task(
    *,
    work: Path,
    datasets: Sequence[Path],
    users: int,
    edges: int,
    seed: int,
    config: RunConfig,
    progress: Progress | None = None,
) -> tuple[BehaviourTask, DataSummary]:
    """Return the behaviour task's per-edge examples (built by edge code) and a summary.

    Parameters
    ----------
    work : Path
        Scratch directory (recreated): input parts, edge directories, the tenant key.
    datasets : Sequence[Path]
        Event logs in the edge input schema; empty generates a synthetic population.
    users : int
        Synthetic users (no datasets).
    edges : int
        Edges the customers are split over.
    seed : int
        Seed of the population and of the split.
    config : RunConfig
        Gives ``cutoff`` (``None``: the last event time minus the label window),
        ``label_window_days`` and ``holdout_fraction``.
    progress : Callable or None
        Called with ``("edges", done, total)``.

    Returns
    -------
    tuple[BehaviourTask, DataSummary]
        The examples and what went into them.

    Raises
    ------
    SimulationError
        If the input is missing, the cutoff leaves no history or no label window, or an
        edge ends up without training examples.
    """
    # 1. Input: the event logs, or a synthetic population.
    if work.exists():
        shutil.rmtree(work)
    population: PopulationConfig | None = None
    if not datasets:
        population = PopulationConfig(users=users, days=30, seed=seed)
        write_population(population, work / "input")
        sources = [work / "input" / f"{c}.jsonl" for c in CHANNELS]
    else:
        sources = list(datasets)
    # 2. Partition by customer and ingest on each edge (the edge validates and keys).
    parts = partition_event_logs(sources, work / "parts", edges=edges, seed=seed)
    key = work / "tenant.key"
    create_key_file(key)
    summary = DataSummary()
    edge_dirs: list[Path] = []
    for i, part in enumerate(parts):
        edge_dir = work / "edges" / f"edge-{i:04d}"
        init_edge(edge_dir=edge_dir, name=f"edge-{i:04d}", channel=Channel.APP, tenant_key=key)
        with EdgeStore.for_edge_dir(edge_dir) as store:
            report = ingest_file(
                store=store,
                path=part,
                pseudonymizer=Pseudonymizer(open_tenant_key(store)),
                detector=_NoText(),
                now=population.end if population is not None else datetime.now(UTC),
            )
        summary.ingest[edge_dir.name] = {
            "lines": report.lines,
            "rejected": sum(report.rejected.values()),
            "errors": list(report.errors),
        }
        edge_dirs.append(edge_dir)
    # 3. The time split: cutoff and round time.
    span = _time_range(edge_dirs)
    if span is None:
        raise SimulationError("the event logs hold no valid event (see data.ingest)")
    window = timedelta(days=config.label_window_days)
    if config.cutoff is not None:
        cutoff = config.cutoff
        at = cutoff + window
    else:
        at = population.end if population is not None else datetime.fromtimestamp(span[1], UTC)
        cutoff = at - window
    first, last = (datetime.fromtimestamp(t, UTC) for t in span)
    if cutoff <= first:
        raise SimulationError(
            f"--cutoff {cutoff.isoformat()} is not after the first event ({first.isoformat()}): "
            "no history to learn from"
        )
    if cutoff >= last:
        raise SimulationError(
            f"--cutoff {cutoff.isoformat()} is not before the last event ({last.isoformat()}): "
            "the label window holds no event"
        )
    consented = _has_consents(edge_dirs)
    split_config = config.model_copy(update={"cutoff": cutoff})
    # 4. Each edge builds its consented subjects' examples.
    train: list[list[BehaviourExample]] = []
    holdout: list[list[BehaviourExample]] = []
    for i, edge_dir in enumerate(edge_dirs):
        with EdgeStore.for_edge_dir(edge_dir) as store:
            split = behaviour_examples(
                store, config=split_config, at=at, assume_consent=not consented
            )
        if not split.train:
            raise SimulationError(
                f"{edge_dir.name} has no training examples ({split.subjects_included} "
                "consenting subjects with history before the cutoff); use fewer edges or "
                "more customers"
            )
        train.append(split.train)
        holdout.append(split.holdout)
        if progress is not None:
            progress("edges", i + 1, len(edge_dirs))
    task = BehaviourTask(train=train, holdout=holdout)
    if not task.held_out():
        raise SimulationError("no held-out subjects: use more customers")
    # 5. The oracle of a synthetic population (its latent purchase rates).
    if population is not None:
        task.oracle = _oracle(population, key, cutoff=cutoff, end=cutoff + window)
    examples = task.pooled_train() + task.held_out()
    positives = int(sum(e.purchase for e in examples))
    summary.examples = len(examples)
    summary.train_examples = [len(p) for p in train]
    summary.test_examples = len(task.held_out())
    summary.classes = ["no purchase", "purchase"]
    summary.label_histogram = {"no purchase": len(examples) - positives, "purchase": positives}
    summary.cutoff = cutoff.isoformat()
    summary.label_window_days = config.label_window_days
    summary.consent = (
        "recorded (model_training consent at the cutoff window's end)"
        if consented
        else "assumed: the event logs hold no consent records, so every customer is treated "
        "as having agreed to model training (research data)"
    )
    return task, summary


def _oracle(
    population: PopulationConfig, key: Path, *, cutoff: datetime, end: datetime
) -> dict[str, float]:
    """Bayes-optimal purchase probabilities of every pseudonym of the synthetic population."""
    from privacy import load_key_file

    resolver = IdentityResolver(Pseudonymizer(load_key_file(key)))

    def pseudonym_of(customer: dict[str, str]) -> str | None:
        return resolver.resolve(CustomerRef.model_validate(customer)).subject

    return oracle_probabilities(
        make_users(population), population, pseudonym_of=pseudonym_of, start=cutoff, end=end
    )
