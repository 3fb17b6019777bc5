"""The in-process engine: a Ray-free Flower ``Grid`` that calls the ClientApp synchronously.

For small runs and tests. The real ``ServerApp`` (strategy, DP wrappers, momentum) runs
against ``InProcessGrid``, which hands each message to the real ``ClientApp`` at once, one
``Context`` per virtual node (``partition-id`` / ``num-partitions`` in its node config,
``context.state`` kept across rounds). Nodes are visited in id order, so a run is
deterministic once Python's and NumPy's global generators are seeded (Flower's client
sampling and central noise use them).

Caveat: Flower strategies build ``Message(...)`` objects that read the internal
``flwr.supercore.task_identity.TaskIdentity``, which :func:`task_identity` (used by
``run_in_process``) sets for the run and restores afterwards (through ``importlib``, confined
to this module; flwr is pinned). Tests drive a ServerApp's ``main`` against the grid inside
the same context manager.
"""

from __future__ import annotations

import copy
import importlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from flwr.app import DEFAULT_TTL, Context, Error, Message, Metadata, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

logger = logging.getLogger(__name__)

SERVER_NODE_ID = 0
#: Flower's error code for an exception raised inside a ClientApp.
CLIENT_APP_RAISED_EXCEPTION = 2
_FIRST_NODE_ID = 1000


#: What a node runs: a ``ClientApp``, or any callable with its signature (tests).
NodeApp = Callable[[Message, Context], Message]


@contextmanager
def task_identity(run_id: int = 1) -> Iterator[None]:
    """Set Flower's task identity to the server of run ``run_id`` for the block, then restore.

    Parameters
    ----------
    run_id : int
        Flower run id the strategy's messages carry.

    Yields
    ------
    None
    """
    identity: Any = importlib.import_module("flwr.supercore.task_identity").TaskIdentity
    saved = (identity._run_id, identity._node_id, identity._task_id)
    identity._run_id, identity._node_id, identity._task_id = run_id, SERVER_NODE_ID, 0
    try:
        yield
    finally:
        identity._run_id, identity._node_id, identity._task_id = saved


class InProcessGrid(Grid):
    """Delivers each message to ``client_app`` at once, with one Context per node.

    Parameters
    ----------
    client_app : ClientApp or Callable[[Message, Context], Message]
        The app every node runs.
    num_nodes : int or None
        Virtual nodes; node ``i`` gets node config ``partition-id = i``,
        ``num-partitions = num_nodes``. Give this or ``node_configs``.
    node_configs : Sequence[Mapping[str, Any]] or None
        One node config per virtual node, as given (instead of ``num_nodes``).
    run_id : int
        Flower run id of the messages.
    run_config : Mapping[str, Any] or None
        The run config every node's Context carries.

    Attributes
    ----------
    delivered : list[str]
        Message types delivered so far, in order (what a test checks a round plan with).

    Raises
    ------
    ValueError
        If neither or both of ``num_nodes`` and ``node_configs`` are given.
    """

    def __init__(
        self,
        client_app: NodeApp,
        num_nodes: int | None = None,
        *,
        node_configs: Sequence[Mapping[str, Any]] | None = None,
        run_id: int = 1,
        run_config: Mapping[str, Any] | None = None,
    ) -> None:
        if (num_nodes is None) == (node_configs is None):
            raise ValueError("give either num_nodes or node_configs")
        if node_configs is None:
            assert num_nodes is not None
            node_configs = [
                {"partition-id": i, "num-partitions": num_nodes} for i in range(num_nodes)
            ]
        self.client_app = client_app
        self.run_id = run_id
        self.contexts = {
            _FIRST_NODE_ID + i: Context(
                run_id, _FIRST_NODE_ID + i, dict(config), RecordDict(), dict(run_config or {})
            )
            for i, config in enumerate(node_configs)
        }
        self._replies: dict[str, Message] = {}
        self._run: Any = None
        self.delivered: list[str] = []

    def set_run(self, run: Any) -> None:
        """Remember the run (Flower's Grid interface)."""
        self._run = run

    @property
    def run(self) -> Any:
        """The run set by ``set_run``."""
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """Create an instruction message."""
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        """Return the virtual nodes' ids."""
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Run the ClientApp on each message (in node-id order); keep the replies.

        Each node gets its own deep copy of the content, as over a real transport: Flower
        strategies and workflows share one RecordDict between nodes, and mods (e.g.
        ``secaggplus_mod``) modify what they receive.
        """
        ids = []
        for message in sorted(messages, key=lambda m: m.metadata.dst_node_id):
            message_id = uuid.uuid4().hex
            delivered = Message(  # type: ignore[call-overload]
                copy.deepcopy(message.content),  # per node, as a real transport delivers
                metadata=Metadata(
                    run_id=self.run_id,
                    message_id=message_id,
                    src_node_id=SERVER_NODE_ID,
                    dst_node_id=message.metadata.dst_node_id,
                    reply_to_message_id="",
                    group_id=message.metadata.group_id,
                    created_at=time.time(),
                    ttl=DEFAULT_TTL,
                    message_type=message.metadata.message_type,
                ),
            )
            context = self.contexts[message.metadata.dst_node_id]
            try:
                reply = self.client_app(delivered, context)
            except Exception as exc:  # noqa: BLE001 - Flower's runtime makes these error replies
                logger.warning("ClientApp raised %s", type(exc).__name__)
                reply = Message(
                    Error(CLIENT_APP_RAISED_EXCEPTION, type(exc).__name__), reply_to=delivered
                )
            self._replies[message_id] = reply
            self.delivered.append(message.metadata.message_type)
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Return the replies to ``message_ids``."""
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Push, then pull at once (every reply is ready)."""
        del timeout
        return self.pull_messages(self.push_messages(messages))


def run_in_process(
    *, server_app: ServerApp, client_app: ClientApp, num_nodes: int, run_id: int = 1
) -> None:
    """Run ``server_app`` against ``num_nodes`` in-process nodes of ``client_app``.

    Parameters
    ----------
    server_app : ServerApp
        The real ServerApp (its ``main`` drives the rounds).
    client_app : ClientApp
        The ClientApp every node runs.
    num_nodes : int
        Number of virtual nodes (>= 1).
    run_id : int
        Flower run id.

    Raises
    ------
    ValueError
        If ``num_nodes`` < 1.
    """
    if num_nodes < 1:
        raise ValueError("num_nodes must be at least 1")
    grid = InProcessGrid(client_app, num_nodes, run_id=run_id)
    context = Context(run_id, SERVER_NODE_ID, {}, RecordDict(), {})
    with task_identity(run_id):
        server_app(grid, context)
