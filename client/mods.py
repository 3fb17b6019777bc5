"""Client-side Flower mods (middleware around the ClientApp's handlers).

Mods are fixed when the app is built, while the DP mode is only known once a message's run
config is read; these mods read it and decide per message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flwr.app import Context, Message
from flwr.clientapp.mod import fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable, Mod

from models import parse_run_config


def central_clipping_mod(
    overrides: Mapping[str, Any],
) -> Mod:
    """Return the train-handler mod that clips updates when the run uses central DP.

    Mods are fixed when the app is built, the DP mode only when a message's run config is
    read: the mod parses it (``overrides`` win) and delegates to Flower's
    ``fixedclipping_mod`` in ``dp-mode`` central or both, which clips the reply's weights
    to ``global + clip(update, clipping_norm)`` with the norm the server's wrapper sent.
    Other modes, and run configs that do not parse (the handler then answers with the
    error), pass straight through.

    Parameters
    ----------
    overrides : Mapping[str, Any]
        The run-config overrides the app was built with.

    Returns
    -------
    Callable[[Message, Context, ClientAppCallable], Message]
        A Flower mod for ``@app.train(mods=[...])`` (never app-wide: the Flower mod does
        not check the message type and would fail every evaluate message).
    """

    def mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        try:
            central = parse_run_config(context.run_config, overrides).central_dp
        except ValueError:
            central = False
        if not central:
            return call_next(msg, context)
        return fixedclipping_mod(msg, context, call_next)

    return mod
