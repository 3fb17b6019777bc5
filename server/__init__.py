"""Server room: FastAPI service, database, audit log, Flower ServerApp.

Imports only the leaf rooms ``privacy``, ``consent`` and ``models``; never ``client``.
Heavy entry points (the app factory, the ServerApp) are exported lazily.
"""

import importlib
import logging
from typing import Any

from .errors import ServerError, SettingsError

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Lazily imported names -> defining module (relative to this package).
_LAZY: dict[str, str] = {
    "ServerSettings": ".config",
    "get_settings": ".config",
    "create_app": ".main",
    "create_db_engine": ".db",
    "upgrade_database": ".db",
    "verify_chain": ".audit.log",
    "list_training_runs": ".crud.training",
    "build_server_app": ".fl.server_app",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ServerError",
    "ServerSettings",
    "SettingsError",
    "build_server_app",
    "create_app",
    "create_db_engine",
    "get_settings",
    "list_training_runs",
    "upgrade_database",
    "verify_chain",
]
