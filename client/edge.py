"""An edge's identity on disk: initialise an edge directory and open its tenant key.

An edge directory holds the store (``edge.sqlite``), the tenant key file (unless a shared
one is used), the server credentials and the quarantine file. The store records the edge's
name, channel and the fingerprint of its tenant key, so an edge can never silently switch
keys (its pseudonyms would stop matching the other channels').
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from models import Channel
from privacy import load_key_file, load_or_create_key_file

from .errors import EdgeConfigError
from .store import EdgeStore

DEFAULT_KEY_FILENAME = "tenant.key"


def key_fingerprint(key: bytes) -> str:
    """Return a short, non-reversible fingerprint of a key (safe to store and show)."""
    return hashlib.sha256(b"fedprofile-tenant-key-fingerprint:" + key).hexdigest()[:16]


@dataclass(frozen=True)
class EdgeInfo:
    """What ``init_edge`` set up."""

    edge_dir: Path
    name: str
    channel: str
    tenant_key: Path
    tenant_key_created: bool
    already_initialised: bool


def validate_edge_name(name: str) -> str:
    """Return ``name`` if it is 1-64 ASCII letters, digits, ``_``, ``.`` or ``-``.

    Raises
    ------
    ValueError
        If the name breaks that rule.
    """
    if (
        not name
        or len(name) > 64
        or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)
    ):
        raise ValueError("edge names are 1-64 letters, digits, '_', '.' or '-'")
    return name


def init_edge(
    *, edge_dir: Path, name: str, channel: Channel, tenant_key: Path | None = None
) -> EdgeInfo:
    """Create (or re-open) an edge directory with its store and tenant key.

    Parameters
    ----------
    edge_dir : Path
        The edge's directory; created if missing.
    name : str
        Edge name (letters, digits, ``_.-``), unique per server.
    channel : Channel
        The channel this edge serves.
    tenant_key : Path or None
        A shared tenant key file (mode 0600) to use; ``None`` creates
        ``<edge_dir>/tenant.key`` if it does not exist.

    Returns
    -------
    EdgeInfo
        What was set up.

    Raises
    ------
    EdgeConfigError
        If the directory already holds another edge, or was initialised with another key.
    KeyFileError
        If the key file cannot be used.
    """
    validate_edge_name(name)
    key_path = (tenant_key or Path(edge_dir) / DEFAULT_KEY_FILENAME).resolve()
    if tenant_key is not None:
        load_key_file(key_path)  # refuse a missing or exposed shared key before creating anything
    with EdgeStore.for_edge_dir(edge_dir) as store:
        old_name, old_channel = store.get_meta("edge_name"), store.get_meta("edge_channel")
        if old_name is not None and (old_name, old_channel) != (name, channel.value):
            raise EdgeConfigError(
                f"{edge_dir} already holds edge {old_name!r} ({old_channel}); "
                "use another --edge-dir"
            )
        created = tenant_key is None and not key_path.exists()
        key = (
            load_key_file(key_path) if tenant_key is not None else load_or_create_key_file(key_path)
        )
        fingerprint = key_fingerprint(key)
        if store.get_meta("tenant_key_fingerprint") not in (None, fingerprint):
            raise EdgeConfigError(
                "this edge was initialised with another tenant key; keep the original key"
            )
        store.set_meta("edge_name", name)
        store.set_meta("edge_channel", channel.value)
        store.set_meta("tenant_key_path", str(key_path))
        store.set_meta("tenant_key_fingerprint", fingerprint)
        if store.get_meta("initialised_at") is None:
            store.set_meta("initialised_at", datetime.now(UTC).isoformat())
    return EdgeInfo(
        edge_dir=Path(edge_dir),
        name=name,
        channel=channel.value,
        tenant_key=key_path,
        tenant_key_created=created,
        already_initialised=old_name is not None,
    )


def open_tenant_key(store: EdgeStore, *, override: Path | None = None) -> bytes:
    """Load the tenant key an edge was initialised with, refusing a different key.

    Parameters
    ----------
    store : EdgeStore
        The edge's store (it records the key path and fingerprint).
    override : Path or None
        A key path to use instead of the recorded one.

    Returns
    -------
    bytes
        The key.

    Raises
    ------
    EdgeConfigError
        If the key's fingerprint differs from the one recorded at initialisation.
    KeyFileError
        If the key file cannot be used.
    """
    recorded = store.get_meta("tenant_key_path")
    if override is None and recorded is None:
        raise EdgeConfigError("the edge has no tenant key recorded; run `fedprofile edge init`")
    path = override or Path(str(recorded))
    key = load_key_file(path)
    expected = store.get_meta("tenant_key_fingerprint")
    if expected is not None and expected != key_fingerprint(key):
        raise EdgeConfigError(
            f"tenant key {path} is not the key this edge was initialised with; pseudonyms "
            "would not match. Point FEDPROFILE_TENANT_KEY_PATH at the original key"
        )
    return key
