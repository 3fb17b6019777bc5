"""A Ray-free, in-process Flower Grid: FedAvg rounds call the real ClientApp synchronously.

Flower strategies build ``Message(...)`` objects that read the internal
``flwr.supercore.task_identity.TaskIdentity``; ``task_identity`` sets it for a test and
restores it afterwards. This private API is confined to tests (flwr is pinned).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from flwr.app import DEFAULT_TTL, Context, Error, Message, Metadata, RecordDict
from flwr.serverapp import Grid

SERVER_NODE_ID = 0
CLIENT_APP_RAISED_EXCEPTION = 2  # flwr's ErrorCode for an exception in the ClientApp


@contextmanager
def task_identity(run_id: int = 1) -> Iterator[None]:
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = run_id, SERVER_NODE_ID, 0
    try:
        yield
    finally:
        TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


class InProcessGrid(Grid):
    """Delivers each message to ``client_app`` at once, with one Context per node."""

    def __init__(
        self,
        client_app: Any,
        node_configs: list[dict[str, Any]],
        *,
        run_id: int = 1,
        run_config: dict[str, Any] | None = None,
    ) -> None:
        self.client_app = client_app
        self.run_id = run_id
        self.contexts = {
            1000 + i: Context(run_id, 1000 + i, dict(cfg), RecordDict(), dict(run_config or {}))
            for i, cfg in enumerate(node_configs)
        }
        self._replies: dict[str, Message] = {}
        self._run: Any = None
        self.delivered: list[str] = []

    def set_run(self, run: Any) -> None:
        self._run = run

    @property
    def run(self) -> Any:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for message in messages:
            message_id = uuid.uuid4().hex
            delivered = Message(
                message.content,
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
            except Exception as exc:  # noqa: BLE001 - the runtime turns these into error replies
                reply = Message(Error(CLIENT_APP_RAISED_EXCEPTION, repr(exc)), reply_to=delivered)
            self._replies[message_id] = reply
            self.delivered.append(message.metadata.message_type)
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))
