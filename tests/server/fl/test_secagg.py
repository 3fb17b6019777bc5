"""SecAgg+ secure aggregation on the real ServerApp and ClientApp (in-process engine).

A recording grid keeps everything the server receives. Under SecAgg+ a scan of it finds no
individual edge update (as floats, as quantized integers dequantized, or as raw bytes),
while the same scan finds every update under plain FedAvg; the secure aggregate equals
plain FedAvg up to quantization; an edge lost while training is tolerated; central DP
still runs (the server noises the securely aggregated mean).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.common import bytes_to_ndarray, ndarray_to_bytes
from flwr.common.secure_aggregation.quantization import dequantize, quantize
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key
from rich.console import Console

from client import PartitionSource, build_client_app
from client.secagg import secure_aggregation_mod
from models import (
    ERROR_BAD_CONFIG,
    ERROR_BUDGET_EXHAUSTED,
    RunConfig,
    get_weights,
    parse_run_config,
)
from server import build_server_app
from simulations.inprocess import SERVER_NODE_ID, InProcessGrid, task_identity
from simulations.runs import Plan, seed_globals
from simulations.simulate import SimulationConfig, _build

EDGES = 5
ROUNDS = 2
#: Plain FedAvg, nothing the server could only do per update (the comparison baseline).
PLAIN: dict[str, Any] = {
    "aggregation": "fedavg",
    "update_norm_bound": 0.0,
    "weight_cap": 0.0,
    "quality_policy": "off",
}
SECURE: dict[str, Any] = {**PLAIN, "secure_aggregation": True}


class RecordingGrid(InProcessGrid):
    """``InProcessGrid`` that snapshots every reply and can lose nodes at a stage."""

    def __init__(self, client_app: Any, num_nodes: int, drop: dict[int, str]) -> None:
        super().__init__(client_app, num_nodes)
        self.received: list[tuple[int, str, RecordDict | Error]] = []
        self.drop = drop  # node id -> stage at which it is lost (every round)
        inner = self.client_app

        def node(msg: Message, context: Context) -> Message:
            if self.drop.get(msg.metadata.dst_node_id) == _stage(msg):
                raise ConnectionError("node lost")
            return inner(msg, context)

        self.client_app = node

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        batch = list(messages)
        stage = _stage(batch[0]) if batch else "-"
        replies = list(super().send_and_receive(batch, timeout=timeout))
        for reply in replies:
            body = copy.deepcopy(reply.content) if reply.has_content() else reply.error
            self.received.append((reply.metadata.src_node_id, stage, body))
        return replies


def _stage(msg: Message) -> str:
    if msg.has_content() and RECORD_KEY_CONFIGS in msg.content.config_records:
        return str(msg.content.config_records[RECORD_KEY_CONFIGS].get(Key.STAGE, "?"))
    return msg.metadata.message_type


@dataclass
class Outcome:
    """What a run left: the global model per round, what the server received, the rows."""

    config: RunConfig
    globals: list[dict[str, np.ndarray]] = field(default_factory=list)
    received: list[tuple[int, str, RecordDict | Error]] = field(default_factory=list)
    rounds: list[Any] = field(default_factory=list)
    status: str = ""
    updates: list[dict[str, np.ndarray]] = field(default_factory=list)
    sent: list[dict[str, np.ndarray]] = field(default_factory=list)


class _Recorder:
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def start(self, *, config: dict[str, Any], num_rounds: int) -> None:
        del config, num_rounds

    def record_round(self, summary: Any) -> None:
        self.outcome.rounds.append(summary)

    def finish(self, *, status: str) -> None:
        self.outcome.status = status


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Plan]:
    cfg = SimulationConfig(
        task="behaviour",
        datasets=(),
        edges=EDGES,
        rounds=ROUNDS,
        out=Path(tmp_path_factory.mktemp("secagg")),
        users=300,
        seed=3,
    )
    data, _ = _build(cfg, Console(quiet=True))
    return data, cfg.plan()


def _run(
    task: tuple[Any, Plan],
    overrides: dict[str, Any],
    *,
    dp_mode: str = "off",
    drop: dict[int, str] | None = None,
    refusing: int | None = None,
) -> Outcome:
    data, plan = task
    config = plan.run_config(
        dp_mode=dp_mode,  # type: ignore[arg-type]
        noise_multiplier=1.0,
        central_noise_multiplier=0.5,
        edges=EDGES,
        overrides=overrides,
    )
    outcome = Outcome(config)
    run_config = config.to_run_config()
    learner = data.learner(config)
    model = learner.new_model(config.seed)
    initial = ArrayRecord(
        {k: Array(np.ascontiguousarray(v)) for k, v in get_weights(model).items()}
    )

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        outcome.globals.append({k: v.numpy().astype(np.float64) for k, v in arrays.items()})
        return MetricRecord({"round": float(server_round)})

    server_app = build_server_app(
        run_config,
        recorder_factory=lambda _config: _Recorder(outcome),
        initial=initial,
        evaluate_fn=evaluate,
    )
    source = PartitionSource(
        learner=learner,
        partitions=data.partitions(learner),
        holdouts=data.holdouts(learner),
        level=data.level,
        seeded_noise=True,
    )

    def capture(msg: Message, context: Context, call_next: Any) -> Message:
        """Innermost-but-one mod: what each edge's update really is (test ground truth)."""
        if context.node_config["partition-id"] == refusing:  # as an edge out of budget does
            error = Error(ERROR_BUDGET_EXHAUSTED, "release would exceed max-epsilon")
            return Message(error, reply_to=msg)
        reply: Message = call_next(msg, context)
        if reply.has_content() and "arrays" in reply.content.array_records:
            sent = msg.content.array_records["arrays"]
            back = reply.content.array_records["arrays"]
            outcome.sent.append({k: np.asarray(back[k].numpy(), np.float64) for k in back})
            outcome.updates.append(
                {
                    k: np.asarray(back[k].numpy(), np.float64)
                    - np.asarray(sent[k].numpy(), np.float64)
                    for k in sent
                }
            )
        return reply

    client_app = build_client_app(run_config, source=source, train_mods=[capture])
    grid = RecordingGrid(client_app, EDGES, drop or {})
    seed_globals(config.seed)
    with task_identity(1):
        server_app(grid, Context(1, SERVER_NODE_ID, {}, RecordDict(), {}))
    outcome.received = grid.received
    return outcome


def _values(record: Any) -> Iterator[Any]:
    for value in record.values():
        yield from value if isinstance(value, list) else [value]


def _targets(outcome: Outcome) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each edge's update arrays, and the updated weights it would send in clear.

    Only arrays that changed by more than 1e-3 count (an untouched array equals the
    global model's and proves nothing).
    """
    updates: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for update, sent in zip(outcome.updates, outcome.sent, strict=True):
        for key, delta in update.items():
            if delta.size >= 8 and np.abs(delta).max() > 1e-3:
                updates.append(delta.ravel())
                weights.append(sent[key].ravel())
    return updates, weights


def leaks(outcome: Outcome) -> list[str]:
    """Where an individual update (or updated weights) appears in what the server received.

    Every array and every bytes value (decoded as an ndarray, and dequantized as SecAgg+
    would) is compared with each edge's update arrays, exactly and up to a scale factor
    (the weighted update ``w / max_weight · Δ``), and with each edge's updated weights;
    raw bytes are searched for the updates' float32 and float64 encodings.
    """
    config = outcome.config
    updates, weights = _targets(outcome)
    found: list[str] = []

    def check(candidate: np.ndarray, where: str) -> None:
        raw = np.asarray(candidate, dtype=np.float64).ravel()
        views = [raw]
        if np.issubdtype(np.asarray(candidate).dtype, np.integer):
            as_int = raw.astype(np.int64)
            views.append(dequantize([as_int], config.secagg_clipping_range, 1 << 22)[0])
        for view in views:
            for target in weights:
                if view.size == target.size and np.allclose(view, target, atol=1e-5):
                    found.append(where + " (weights)")
            for target in updates:
                if view.size != target.size:
                    continue
                ratio = float(np.dot(view, target) / np.dot(target, target))
                error = np.abs(view - ratio * target).max()
                if abs(ratio) > 1e-9 and error <= 1e-5 + 0.01 * abs(ratio) * np.abs(target).max():
                    found.append(where + f" (update x {ratio:.3g})")

    def search_bytes(data: bytes, where: str) -> None:
        for target in updates:
            for dtype in (np.float32, np.float64):
                if target.astype(dtype).tobytes()[:32] in data:
                    found.append(where + " (raw bytes)")

    for node, stage, body in outcome.received:
        if not isinstance(body, RecordDict):
            continue
        for name, record in body.items():
            where = f"{node}/{stage}/{name}"
            if isinstance(record, ArrayRecord):
                for array in record.values():
                    check(array.numpy(), where)
                    search_bytes(array.numpy().tobytes(), where)
                continue
            for value in _values(record):
                if isinstance(value, bytes):
                    try:
                        check(bytes_to_ndarray(value), where)
                    except Exception:  # noqa: BLE001, S110 - not an ndarray: raw search below
                        pass
                    search_bytes(value, where)
    return found


def _plain_update_seen_by_each_edge(outcome: Outcome) -> None:
    assert len(outcome.updates) == EDGES * ROUNDS


def test_secure_aggregation_server_receives_no_individual_update(task: Any) -> None:
    plain = _run(task, PLAIN)
    secure = _run(task, SECURE)

    _plain_update_seen_by_each_edge(plain)
    _plain_update_seen_by_each_edge(secure)
    assert len(leaks(plain)) >= EDGES * ROUNDS  # the scan finds what is there
    assert leaks(secure) == []
    # the scan itself would see an update that was only weighted and quantized (no masks)
    update = max(secure.updates[0].values(), key=lambda d: float(np.abs(d).max()))
    quantized = quantize([update * 0.07], secure.config.secagg_clipping_range, 1 << 22)[0]
    fake = RecordDict({"x": ConfigRecord({"v": [ndarray_to_bytes(quantized)]})})
    assert leaks(replace(secure, received=[(1000, "unmasked", fake)])) != []
    stages = {stage for _, stage, _ in secure.received}
    assert {"setup", "share_keys", "collect_masked_vectors", "unmask"} <= stages
    assert secure.status == "completed"
    # metrics and edge info still arrive (in clear), one row per edge per round
    train = [r for r in secure.rounds if r.phase == "train"]
    assert [len(r.edges) for r in train] == [EDGES] * ROUNDS
    assert all(row["edge"] for r in train for row in r.edges)


def test_secure_aggregate_equals_plain_fedavg_up_to_quantization(task: Any) -> None:
    plain = _run(task, PLAIN)
    secure = _run(task, SECURE)

    assert len(secure.globals) == len(plain.globals) == ROUNDS + 1  # with round 0
    for got, want in zip(secure.globals, plain.globals, strict=True):
        for key in want:
            np.testing.assert_allclose(got[key], want[key], atol=1e-4)
    # ...and it is a real training step, not the initial model sent back
    first = secure.globals[0]
    assert max(np.abs(first[k] - secure.globals[-1][k]).max() for k in first) > 1e-3


def test_an_edge_lost_while_training_is_tolerated(task: Any) -> None:
    secure = _run(task, SECURE, drop={1002: "collect_masked_vectors"})
    plain = _run(task, PLAIN, drop={1002: "train"})

    assert secure.status == "completed"
    train = [r for r in secure.rounds if r.phase == "train"]
    assert [sum("error_code" not in e for e in r.edges) for r in train] == [EDGES - 1] * ROUNDS
    for got, want in zip(secure.globals, plain.globals, strict=True):
        for key in want:
            np.testing.assert_allclose(got[key], want[key], atol=1e-4)
    assert leaks(secure) == []


def test_an_edge_lost_at_setup_restarts_without_it(task: Any) -> None:
    secure = _run(task, SECURE, drop={1003: "share_keys"})

    assert secure.status == "completed"
    train = [r for r in secure.rounds if r.phase == "train"]
    assert [sum("error_code" not in e for e in r.edges) for r in train] == [EDGES - 1] * ROUNDS


def test_a_budget_refusal_reaches_the_budget_stop_with_its_code(task: Any) -> None:
    secure = _run(task, SECURE, refusing=2)

    train = [r for r in secure.rounds if r.phase == "train"]
    codes = [e.get("error_code") for e in train[0].edges]
    assert codes.count(ERROR_BUDGET_EXHAUSTED) == 1 and codes.count(None) == EDGES - 1
    assert secure.status == "budget_exhausted"  # as without secure aggregation
    assert leaks(secure) == []


def test_secure_aggregation_under_central_dp(task: Any) -> None:
    secure = _run(task, {"secure_aggregation": True}, dp_mode="central")

    assert secure.config.aggregation_rule == "fedavg"
    assert secure.status == "completed"
    assert leaks(secure) == []
    train = [r for r in secure.rounds if r.phase == "train"]
    assert len(train) == ROUNDS
    assert all(r.metrics.get("central-epsilon", 0) > 0 for r in train)


def test_plain_train_message_refused_when_run_promises_secure_aggregation() -> None:
    mod = secure_aggregation_mod({"secure-aggregation": True, "min-nodes": 3})
    with task_identity(1):
        msg = Message(RecordDict(), 1000, "train")
    context = Context(1, 1000, {}, RecordDict(), {})

    reply = mod(msg, context, lambda m, c: pytest.fail("handler must not run"))

    assert reply.has_error() and reply.error.code == ERROR_BAD_CONFIG
    passthrough = secure_aggregation_mod({})(msg, context, lambda m, c: m)
    assert passthrough is msg


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"aggregation": "trimmed-mean"}, "cannot run with secure-aggregation"),
        ({"aggregation": "krum", "min-nodes": 5}, "cannot run with secure-aggregation"),
        ({"secagg-threshold": 5}, "below secagg-shares"),
        ({"secagg-threshold": 2}, "more than half"),
        ({"min-nodes": 2}, "min-nodes"),
    ],
)
def test_run_config_refuses_inconsistent_secure_aggregation(
    values: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        parse_run_config({"secure-aggregation": True, "min-nodes": 3, **values})
