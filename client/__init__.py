"""Client room: the edge runtime (ingestion, local store, profiles, uploader, ClientApp).

Imports only the leaf rooms ``privacy``, ``consent`` and ``models``; never ``server``.
Errors are imported eagerly; everything else lazily, so importing the room stays cheap.
"""

import importlib
import logging
from typing import Any

from .errors import (
    ClientError,
    EdgeConfigError,
    EdgeNotInitialisedError,
    InputFileError,
    LearningDataError,
    RegistrationError,
    ScrubberUnavailableError,
    ServerUnavailableError,
    UploadRefusedError,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Lazily imported names -> defining module (relative to this package).
_LAZY: dict[str, str] = {
    "ClientSettings": ".config",
    "get_client_settings": ".config",
    "EdgeStore": ".store",
    "STORE_FILENAME": ".store",
    "EdgeUploader": ".uploader",
    "SyncReport": ".outbox",
    "IngestReport": ".ingest",
    "ingest_file": ".ingest",
    "ProfileBuildReport": ".profile",
    "build_profiles": ".profile",
    "ProfileScope": ".profile",
    "features_from_store": ".features",
    "SubjectFeatures": ".features",
    "compute_features": ".features",
    "IdentityResolver": ".identity",
    "build_client_app": ".app",
    "score_subjects": ".scoring",
    "model_quality": ".scoring",
    "ledger_report": ".ledger",
    "LearningSource": ".learning.source",
    "PartitionSource": ".learning.memory_source",
    "StoreSource": ".learning.store_source",
    "central_clipping_mod": ".mods",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ClientError",
    "ClientSettings",
    "EdgeConfigError",
    "EdgeNotInitialisedError",
    "EdgeStore",
    "EdgeUploader",
    "IdentityResolver",
    "IngestReport",
    "InputFileError",
    "LearningDataError",
    "LearningSource",
    "PartitionSource",
    "ProfileBuildReport",
    "ProfileScope",
    "RegistrationError",
    "STORE_FILENAME",
    "ScrubberUnavailableError",
    "ServerUnavailableError",
    "StoreSource",
    "SubjectFeatures",
    "SyncReport",
    "UploadRefusedError",
    "build_client_app",
    "build_profiles",
    "central_clipping_mod",
    "compute_features",
    "features_from_store",
    "get_client_settings",
    "ingest_file",
    "ledger_report",
    "model_quality",
    "score_subjects",
]
