"""The edge's side of SecAgg+ secure aggregation (run-config ``secure-aggregation``).

Flower 1.41 ships SecAgg+ only for its legacy ``NumPyClient`` shape: ``secaggplus_mod``
expects the handler's reply to carry legacy ``fitres.*`` records and cannot pass an error
reply on. Our train handler speaks the new Message API (one ArrayRecord, a MetricRecord
with ``num-examples``, error replies for refusals), so ``secure_aggregation_mod`` puts a
small bridge between the two, written here:

1. It strips Flower's ``secaggplus_configs`` record from the stage-2 (collect masked
   vectors) message before the handler sees it, so the inner mods see a plain train
   message (``fixedclipping_mod`` refuses a message with more than one ConfigRecord).
2. It turns the handler's reply into the ``fitres.*`` records ``secaggplus_mod`` masks.
   What is masked is the **update** (reply − received global weights), not the weights:
   it fits the quantization range (``secagg-clipping-range``) far better; the server adds
   the global model back (``server.fl.secagg``).
3. An error reply (budget exhausted, no data) cannot travel through ``secaggplus_mod``: the
   bridge raises it as ``SecAggRefusal`` and the outer part of the mod turns it back into
   the same error reply (code and reason), so the server's budget stop still sees it; the
   edge counts as dropped out of that round's secure aggregation.

Messages without SecAgg+ configs pass straight through, unless the run config turns
``secure-aggregation`` on: then a plain train message is refused, so an edge never sends its
update in clear when the run promised secure aggregation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.app import Context, Error, Message, MessageType, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.compat.common import recorddict_compat

from models import ERROR_BAD_CONFIG, METRIC_NUM_EXAMPLES, parse_run_config

logger = logging.getLogger(__name__)


class SecAggRefusal(Exception):
    """The train handler answered with an error inside SecAgg+; carried out as that error."""

    def __init__(self, error: Error) -> None:
        super().__init__(f"train refused ({error.code}): {error.reason}")
        self.error = error


def is_secagg_message(msg: Message) -> bool:
    """Whether ``msg`` is a SecAgg+ protocol message (it carries ``secaggplus_configs``)."""
    return (
        msg.metadata.message_type == MessageType.TRAIN
        and msg.has_content()
        and RECORD_KEY_CONFIGS in msg.content.config_records
    )


def _fitres_records(reply: Message, received: Message) -> None:
    """Add the legacy ``fitres.*`` records of the update (reply − received) to ``reply``."""
    content = reply.content
    if len(content.array_records) != 1 or len(received.content.array_records) != 1:
        raise ValueError("SecAgg+ bridge: expected exactly one ArrayRecord each way")
    new = next(iter(content.array_records.values()))
    old = next(iter(received.content.array_records.values()))
    if list(new.keys()) != list(old.keys()):
        raise ValueError("SecAgg+ bridge: the reply's arrays differ from the global model's")
    update = [
        np.asarray(a.numpy(), dtype=np.float64) - np.asarray(g.numpy(), dtype=np.float64)
        for a, g in zip(new.values(), old.values(), strict=True)
    ]
    metrics = next(iter(content.metric_records.values()), None)
    if metrics is None or METRIC_NUM_EXAMPLES not in metrics:
        raise ValueError(f"SecAgg+ bridge: the reply carries no {METRIC_NUM_EXAMPLES!r}")
    weight = int(metrics[METRIC_NUM_EXAMPLES])  # type: ignore[arg-type]
    fitres = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(update), weight, {})
    for key, record in recorddict_compat.fitres_to_recorddict(fitres, keep_input=False).items():
        content[key] = record


def _bridge(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Sit inside ``secaggplus_mod``: plain train message in, ``fitres.*`` records out."""
    if RECORD_KEY_CONFIGS not in msg.content.config_records:
        return call_next(msg, context)  # setup / share-keys / unmask never get here
    inner = Message(  # type: ignore[call-overload]  # same metadata: Flower's own form
        RecordDict({k: v for k, v in msg.content.items() if k != RECORD_KEY_CONFIGS}),
        metadata=msg.metadata,
    )
    reply = call_next(inner, context)
    if reply.has_error():
        raise SecAggRefusal(reply.error)
    _fitres_records(reply, inner)
    return reply  # secaggplus_mod empties every ArrayRecord before it leaves the edge


def secure_aggregation_mod(overrides: Mapping[str, Any]) -> Mod:
    """Return the train-handler mod that runs SecAgg+ when the server asks for it.

    Mods are fixed when the app is built; the mod decides per message. A SecAgg+ message
    runs ``secaggplus_mod`` around the bridge (module docstring); a plain train message
    passes through unless the run config (``overrides`` win) has ``secure-aggregation``
    on, in which case it is refused with ``ERROR_BAD_CONFIG``.

    Parameters
    ----------
    overrides : Mapping[str, Any]
        The run-config overrides the app was built with.

    Returns
    -------
    Callable[[Message, Context, ClientAppCallable], Message]
        A Flower mod for ``@app.train(mods=[...])``, outside every other train mod (so
        what it masks is the reply as it would otherwise leave the edge).
    """

    def mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if not is_secagg_message(msg):
            if _secure_run(context, overrides):
                reason = (
                    "run-config secure-aggregation is on but the train message carries no "
                    "SecAgg+ configuration; refusing to send the update in clear"
                )
                logger.warning("replying with error %d: %s", ERROR_BAD_CONFIG, reason)
                return Message(Error(code=ERROR_BAD_CONFIG, reason=reason), reply_to=msg)
            return call_next(msg, context)
        try:
            return secaggplus_mod(msg, context, lambda m, c: _bridge(m, c, call_next))
        except SecAggRefusal as refusal:
            return Message(refusal.error, reply_to=msg)

    return mod


def _secure_run(context: Context, overrides: Mapping[str, Any]) -> bool:
    try:
        return bool(parse_run_config(context.run_config, overrides).secure_aggregation)
    except ValueError:
        return False  # the handler answers a bad run config with its own error
