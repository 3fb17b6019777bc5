"""SecAgg+ secure aggregation under the new-API strategies (run-config ``secure-aggregation``).

Flower 1.41 runs SecAgg+ only as a legacy ``Workflow`` (``SecAggPlusWorkflow``) driving a
legacy ``Strategy`` through a ``LegacyContext``; our strategies (``server.fl.strategy``,
Flower's DP wrapper) are new-API ``Strategy.start`` loops that call ``grid.send_and_receive``.
Flower offers no bridge between the two, so this module writes one: ``SecAggPlusGrid`` wraps
the grid the strategy uses. Evaluate and query messages pass straight through. A batch of
train messages becomes one full SecAgg+ run of Flower's own, unmodified
``SecAggPlusWorkflow`` (setup, share keys, collect masked vectors, unmask) over the same
nodes, with a throw-away ``LegacyContext`` and an adapter legacy strategy; at the collect
stage each node receives the strategy's own train message (global model, config) plus the
SecAgg+ configs, and answers with a masked update (``client.secagg``). The strategy then gets
one reply per node that completed the collect stage, holding that node's own metrics and
edge info (sent in clear) and the **securely aggregated** model ``global + Σ wᵢ·Δᵢ / Σ wᵢ``:
every reply carries the same arrays, so FedAvg over them (or Flower's DP wrapper's clipped
mean plus noise) returns exactly that aggregate.

What the server receives, and so what ``RecordingGrid``-style inspection finds, is masked
vectors, public keys, encrypted shares and the unmasking shares: no individual update.

Dropouts: a node that fails at the collect or unmask stage is tolerated as long as every
node keeps ``secagg-threshold`` live neighbours (its masks are removed with the shares of
its secret). A node lost at setup or share-keys makes Flower 1.41's workflow fail later, at
unmask, after everyone trained (the survivors raise ``KeyError`` for the lost node's share);
the wrapper therefore restarts the protocol without such nodes before anyone trains (up to
``MAX_ATTEMPTS`` times). Error replies (an edge's budget refusal, missing data) keep their
code and reason and reach the strategy as error replies, so the budget stop still works.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, RecordDict
from flwr.app.message_type import MessageType
from flwr.common import (
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    parameters_to_ndarrays,
)
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage
from flwr.common.typing import EvaluateIns, EvaluateRes
from flwr.proto.node_pb2 import NodeInfo  # Flower's own import
from flwr.server.client_manager import ClientManager, SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.strategy import Strategy as LegacyStrategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from models import RunConfig

logger = logging.getLogger(__name__)

#: Error code of the synthetic reply of a node whose round SecAgg+ could not complete.
SECAGG_FAILED = 1001
#: Protocol restarts after nodes were lost before training (Flower 1.41 work-around).
MAX_ATTEMPTS = 3
#: The FedAvg weight every edge reports under central DP (``client.app.CENTRAL_WEIGHT``).
CENTRAL_WEIGHT = 1.0
_FITRES_PREFIX = "fitres."


def secagg_workflow(config: RunConfig) -> SecAggPlusWorkflow:
    """Return Flower's ``SecAggPlusWorkflow`` with the run's SecAgg+ settings.

    Under central DP every edge reports weight 1, so ``max_weight`` is 1 (best precision)
    whatever ``secagg-max-weight`` says.
    """
    return SecAggPlusWorkflow(
        num_shares=config.secagg_shares,
        reconstruction_threshold=config.secagg_threshold,
        clipping_range=config.secagg_clipping_range,
        max_weight=CENTRAL_WEIGHT if config.central_dp else config.secagg_max_weight,
    )


class _AdapterStrategy(LegacyStrategy):
    """The legacy strategy the workflow drives: fixed node list, keeps the aggregate."""

    def __init__(self, proxies: list[ClientProxy]) -> None:
        self.proxies = proxies
        self.parameters: Parameters | None = None

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        return None

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        return [(p, FitIns(Parameters([], ""), {})) for p in self.proxies]

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        # The workflow put the unmasked weighted average into every result.
        self.parameters = results[0][1].parameters if results else None
        return self.parameters, {}

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        return []

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        return None, {}

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        return None


class _Restart(Exception):
    """Nodes were lost before training: restart the protocol without them."""


class _DelegatingGrid(Grid):
    """A grid that forwards the plumbing to ``inner``."""

    def __init__(self, inner: Grid) -> None:
        self.inner = inner

    def set_run(self, run: Run) -> None:
        self.inner.set_run(run)

    @property
    def run(self) -> Run:
        return self.inner.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def get_nodes(self) -> Iterable[NodeInfo]:
        return self.inner.get_nodes()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.inner.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.inner.send_and_receive(messages, timeout=timeout)


class _StageGrid(_DelegatingGrid):
    """The grid the workflow sees: puts the strategy's train content into stage 2."""

    def __init__(self, inner: Grid, originals: dict[int, Message]) -> None:
        super().__init__(inner)
        self.originals = originals
        self.collected: dict[int, Message] = {}
        self.errors: dict[int, Message] = {}

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        out: list[Message] = []
        stage = None
        for message in messages:
            configs = message.content.config_records[RECORD_KEY_CONFIGS]
            stage = configs[Key.STAGE]
            node = message.metadata.dst_node_id
            if stage == Stage.COLLECT_MASKED_VECTORS:
                if self.errors:
                    raise _Restart  # see the module docstring (Flower 1.41 work-around)
                original = self.originals[node]
                content = RecordDict(dict(original.content.items()))
                content[RECORD_KEY_CONFIGS] = configs
                group = original.metadata.group_id
            else:
                # The workflow shares one RecordDict between nodes and secaggplus_mod
                # mutates it: each node gets its own (small) copy, as on a real wire.
                content = copy.deepcopy(message.content)
                group = message.metadata.group_id
            out.append(Message(content, node, MessageType.TRAIN, group_id=group))
        replies = list(self.inner.send_and_receive(out, timeout=timeout))
        for reply in replies:
            node = reply.metadata.src_node_id
            if reply.has_error():
                self.errors.setdefault(node, reply)
            elif stage == Stage.COLLECT_MASKED_VECTORS:
                self.collected[node] = reply
        return replies


class SecAggPlusGrid(_DelegatingGrid):
    """Wrap a new-API ``Grid`` so every batch of train messages is aggregated with SecAgg+.

    Parameters
    ----------
    inner : Grid
        The grid to the edges.
    workflow : SecAggPlusWorkflow
        Flower's workflow with the run's SecAgg+ settings (``secagg_workflow``).
    """

    def __init__(self, inner: Grid, workflow: SecAggPlusWorkflow) -> None:
        super().__init__(inner)
        self.workflow = workflow

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Run SecAgg+ for a batch of train messages; pass anything else through."""
        batch = list(messages)
        if not batch or any(m.metadata.message_type != MessageType.TRAIN for m in batch):
            return self.inner.send_and_receive(batch, timeout=timeout)
        return self._secure_round(batch, timeout)

    def _secure_round(self, batch: list[Message], timeout: float | None) -> list[Message]:
        lost: list[Message] = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            logger.info("secure aggregation (SecAgg+): %d edges, attempt %d", len(batch), attempt)
            grid = _StageGrid(self.inner, {m.metadata.dst_node_id: m for m in batch})
            try:
                return lost + self._protocol(grid, batch)
            except _Restart:
                logger.warning(
                    "secure aggregation: %d edge(s) lost before training; restarting without them",
                    len(grid.errors),
                )
                lost += list(grid.errors.values())
                batch = [m for m in batch if m.metadata.dst_node_id not in grid.errors]
        logger.error("secure aggregation failed after %d attempts", MAX_ATTEMPTS)
        return lost + [_failed(m) for m in batch]

    def _protocol(self, grid: _StageGrid, batch: list[Message]) -> list[Message]:
        run_id = batch[0].metadata.run_id
        proxies: list[ClientProxy] = [
            GridClientProxy(node, grid, run_id) for node in grid.originals
        ]
        manager = SimpleClientManager()
        for proxy in proxies:
            manager.register(proxy)
        adapter = _AdapterStrategy(proxies)
        context = LegacyContext(
            Context(run_id, 0, {}, RecordDict(), {}), strategy=adapter, client_manager=manager
        )
        context.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
            {WorkflowKey.CURRENT_ROUND: _server_round(batch[0])}
        )
        context.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord()
        self.workflow(grid, context)

        if adapter.parameters is None:  # halted: too few live nodes or shares
            logger.warning("secure aggregation halted: no aggregate this round")
            return list(grid.errors.values()) + [
                _failed(m) for node, m in grid.originals.items() if node not in grid.errors
            ]
        aggregated = _add_global(parameters_to_ndarrays(adapter.parameters), batch[0])
        replies: list[Message] = []
        for reply in grid.collected.values():
            content = RecordDict()
            for key, record in reply.content.items():
                if key.startswith(_FITRES_PREFIX) or key == RECORD_KEY_CONFIGS:
                    continue  # the masked vector and protocol state: not for the strategy
                # each reply its own copy: strategies may modify what they receive
                is_arrays = isinstance(record, ArrayRecord)
                content[key] = copy.deepcopy(aggregated) if is_arrays else record
            reply.content = content
            replies.append(reply)
        logger.info(
            "secure aggregation: %d masked updates aggregated, %d edge(s) dropped",
            len(replies),
            len(grid.originals) - len(replies),
        )
        dropped = [e for node, e in grid.errors.items() if node not in grid.collected]
        return replies + dropped


def _server_round(message: Message) -> int:
    for record in message.content.config_records.values():
        value = record.get("server-round")
        if isinstance(value, int):
            return value
    group = message.metadata.group_id
    return int(group) if group.isdigit() else 0


def _add_global(update: list[np.ndarray], sent: Message) -> ArrayRecord:
    """Return ``global + aggregated update`` named and typed like the global model sent."""
    template = next(iter(sent.content.array_records.values()))
    return ArrayRecord(
        {
            name: Array(
                np.ascontiguousarray(
                    (np.asarray(g.numpy(), dtype=np.float64) + u).astype(g.numpy().dtype)
                )
            )
            for (name, g), u in zip(template.items(), update, strict=True)
        }
    )


def _failed(message: Message) -> Message:
    """Return an error reply for a train message secure aggregation could not complete."""
    return Message(Error(SECAGG_FAILED, "secure aggregation halted"), reply_to=message)
