"""The server's Flower ``ServerApp``: FedAvg of the edges' DP behaviour-model updates.

``server.fl.server_app:app`` is the ServerApp named in ``pyproject.toml``. Flower is
imported only by the modules of this package, never by ``server`` itself.
"""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__: list[str] = []
