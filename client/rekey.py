"""Tenant key rotation on an edge: re-key the local store and the server's rows, crash-safely.

Edges hold pseudonyms, never identifiers, so a rotated tenant key is applied with the
keyed-hash chain of ``privacy.TenantKeyChain``: each stored pseudonym maps to its next
generation's pseudonym with the new key alone. ``fedprofile edge rekey`` runs three numbered
steps (:func:`rekey_edge`), each safe to interrupt and re-run:

1. **plan** (one SQLite transaction): every distinct pseudonym of the store (every column
   named ``subject`` or ``pseudonym`` of every table, so tables added later are covered)
   gets its ``old -> new`` pair in the ``rekey_pairs`` table, numbered in batches, and the
   rotation's state (key ids, new chain file) goes into the store's metadata. With
   ``--generate`` the new chain is written first, beside the old key file (mode 0600);
2. **upload**: each unconfirmed batch goes to ``POST /api/v1/edges/me/rekey``; a batch is
   marked confirmed only after the server answered 2xx (the server side is idempotent, so a
   batch re-sent after a crash is harmless). Only pseudonyms cross, never a key;
3. **switch** (one SQLite transaction): subjects that arrived since the plan are added and
   uploaded first; then every pseudonym column is renamed, pending uploads keyed by old
   pseudonyms are superseded (the next sync queues them again under the new ones), and the
   store records the new chain file and key id. Ingestion uses the new chain from then on
   (:func:`open_edge_pseudonymizer`).

The edge keeps using its old key until step 3, and refuses to ingest while a rotation is
unfinished, so no pseudonym is ever produced under a key the server has not been told about.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models import RekeyBatch
from privacy import (
    Pseudonymizer,
    TenantKeyChain,
    load_tenant_key_chain,
    save_tenant_key_chain_file,
)

from .config import ClientSettings
from .edge import key_fingerprint
from .errors import EdgeConfigError
from .rekey_store import RekeyDB
from .rekey_transport import RekeyTransport
from .store import EdgeStore

logger = logging.getLogger(__name__)

#: Metadata key of an unfinished rotation's state (JSON).
STATE_META = "rekey_state"
#: Metadata key of the current generation's key id (set by the first rotation).
KID_META = "tenant_key_kid"
#: Pairs per upload batch by default (the server accepts up to ``models.REKEY_BATCH_MAX``).
DEFAULT_BATCH_SIZE = 500

#: Progress hook: ``(batches confirmed, batches in total)``.
RekeyProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class RekeyState:
    """An unfinished rotation, as recorded in the store's metadata.

    Parameters
    ----------
    from_kid : str
        Id of the generation the edge used when the rotation started.
    to_kid : str
        Id of the generation it moves to.
    chain_path : str
        The new chain file (kept by the edge from then on).
    """

    from_kid: str
    to_kid: str
    chain_path: str


@dataclass
class RekeyReport:
    """Outcome of one ``rekey_edge`` run (counts and key ids only).

    Parameters
    ----------
    from_kid, to_kid : str
        The generations mapped between.
    chain_path : str
        The chain file the edge uses after the switch.
    resumed : bool
        Whether the run continued an interrupted rotation.
    subjects : int
        Pseudonyms mapped (all of the store's, including late arrivals).
    batches_sent : int
        Batches the server confirmed in this run.
    applied, already_applied, unknown, tombstoned : int
        The server's counts summed over this run's batches.
    uploaded : bool
        False when the edge is not registered (the server holds nothing of it).
    switched : bool
        Whether the store now uses the new generation.
    elapsed : float
        Seconds the run took.
    """

    from_kid: str
    to_kid: str
    chain_path: str
    resumed: bool = False
    subjects: int = 0
    batches_sent: int = 0
    applied: int = 0
    already_applied: int = 0
    unknown: int = 0
    tombstoned: int = 0
    uploaded: bool = True
    switched: bool = False
    elapsed: float = 0.0
    rows_renamed: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data (for ``--json``)."""
        return asdict(self)


# ------------------------------------------------------------------ the store's key state
def _state(store: EdgeStore) -> RekeyState | None:
    """Return the unfinished rotation recorded in the store, if any."""
    raw = store.get_meta(STATE_META)
    return None if raw is None else RekeyState(**json.loads(raw))


def _current_kid(store: EdgeStore, chain: TenantKeyChain) -> str:
    """Return the id of the generation the store's pseudonyms are under, checked against ``chain``.

    Raises
    ------
    EdgeConfigError
        If ``chain`` does not hold that generation (another tenant's or an old key file).
    """
    kid = store.get_meta(KID_META)
    if kid is None:  # never rotated: the recorded fingerprint names generation 1
        expected = store.get_meta("tenant_key_fingerprint")
        if expected is not None and key_fingerprint(chain.generation_key(0)) != expected:
            raise EdgeConfigError(
                "the tenant key file is not the key this edge was initialised with; pseudonyms "
                "would not match. Point FEDPROFILE_TENANT_KEY_PATH at the original key"
            )
        kid = chain.kids[0]
    if kid not in chain.kids:
        raise EdgeConfigError(
            f"the tenant key file does not hold this edge's current key generation ({kid}); "
            "point FEDPROFILE_TENANT_KEY_PATH at the edge's current chain file"
        )
    return kid


def _chain_path(store: EdgeStore, override: Path | None) -> Path:
    """Return the key file to read: the override, else the recorded one."""
    recorded = store.get_meta("tenant_key_path")
    if override is None and recorded is None:
        raise EdgeConfigError("the edge has no tenant key recorded; run `fedprofile edge init`")
    return override or Path(str(recorded))


def open_edge_pseudonymizer(store: EdgeStore, *, override: Path | None = None) -> Pseudonymizer:
    """Return the pseudonymiser of the edge's current key generation (for ingestion).

    Parameters
    ----------
    store : EdgeStore
        The edge's store (it records the key file, its fingerprint and, after a rotation,
        the current generation's id).
    override : Path or None
        A key file to use instead of the recorded one.

    Returns
    -------
    Pseudonymizer
        A ``ChainedPseudonymizer`` (equal to ``Pseudonymizer`` before any rotation).

    Raises
    ------
    EdgeConfigError
        If a rotation is unfinished, the key file holds a newer generation the store was not
        re-keyed to, or the file is not this edge's key.
    KeyFileError
        If the key file cannot be used.
    """
    if _state(store) is not None:
        raise EdgeConfigError(
            "a tenant key rotation is unfinished; run 'fedprofile edge rekey' to finish it "
            "before ingesting"
        )
    chain = load_tenant_key_chain(_chain_path(store, override))
    kid = _current_kid(store, chain)
    if kid != chain.current_kid:
        raise EdgeConfigError(
            "the tenant key file holds a newer key generation than this edge's store; run "
            "'fedprofile edge rekey --new-key FILE' with that file first"
        )
    pseudonymizer: Pseudonymizer = chain.pseudonymizer()
    return pseudonymizer


# ------------------------------------------------------------------ the rotation
def _new_chain(
    *, settings: ClientSettings, current: TenantKeyChain, new_key: Path | None, generate: bool
) -> tuple[TenantKeyChain, Path]:
    """Return the chain to rotate to and its file (written now for ``generate``)."""
    if generate:
        chain = current.rotated()
        path = (settings.edge_dir / f"tenant.key.g{chain.generation}").resolve()
        if path.exists():  # written by an interrupted run before its plan was recorded
            existing = load_tenant_key_chain(path)
            if not existing.extends(current):
                raise EdgeConfigError(f"{path} exists and does not extend this edge's key chain")
            return existing, path
        save_tenant_key_chain_file(path, chain)
        return chain, path
    if new_key is None:
        raise EdgeConfigError("pass --new-key FILE or --generate")
    chain = load_tenant_key_chain(new_key)
    if not chain.extends(current):
        raise EdgeConfigError(
            f"{new_key} does not extend this edge's key chain: its first generations must be "
            "the edge's current ones (use the file made by rotating the tenant's key)"
        )
    return chain, new_key.resolve()


def _plan(
    *,
    store: EdgeStore,
    db: RekeyDB,
    settings: ClientSettings,
    new_key: Path | None,
    generate: bool,
    batch_size: int,
) -> RekeyState:
    """Step 1: write the new chain (if generated), the pairs and the state; one transaction."""
    if new_key is None and not generate:
        raise EdgeConfigError("no rotation in progress: pass --new-key FILE or --generate")
    loaded = load_tenant_key_chain(_chain_path(store, settings.tenant_key_path))
    current = loaded.upto(_current_kid(store, loaded))
    chain, path = _new_chain(settings=settings, current=current, new_key=new_key, generate=generate)
    rekeyer = chain.rekeyer(since_kid=current.current_kid)
    state = RekeyState(from_kid=current.current_kid, to_kid=chain.current_kid,
                       chain_path=str(path))  # fmt: skip
    with db.transaction() as conn:
        conn.execute("DELETE FROM rekey_pairs")
        olds = db.unmapped()
        db.add_pairs([(old, rekeyer.rekey(old)) for old in olds], batch_size=batch_size)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (STATE_META, json.dumps(asdict(state), sort_keys=True)),
        )
    logger.info("rekey planned: %d pseudonym(s), %s -> %s", len(olds), state.from_kid,
                state.to_kid)  # fmt: skip
    return state


def _upload(
    *,
    db: RekeyDB,
    state: RekeyState,
    transport: RekeyTransport | None,
    report: RekeyReport,
    progress: RekeyProgress | None,
) -> None:
    """Step 2: send every unconfirmed batch; confirm each after the server's 2xx."""
    pending = db.pending_batches()
    for done, number in enumerate(pending, start=1):
        if transport is not None:
            result = transport.send(
                RekeyBatch(from_kid=state.from_kid, to_kid=state.to_kid, pairs=db.batch(number))
            )
            report.applied += result.applied
            report.already_applied += result.already_applied
            report.unknown += result.unknown
            report.tombstoned += result.tombstoned
            report.batches_sent += 1
        db.confirm(number)
        if progress is not None:
            progress(done, len(pending))


def _switch(*, db: RekeyDB, state: RekeyState, batch_size: int) -> dict[str, int] | None:
    """Step 3: rename every pseudonym column and adopt the new chain; one transaction.

    Returns None (and records the new pairs) when subjects arrived since the plan: they must
    be uploaded first.
    """
    chain = load_tenant_key_chain(Path(state.chain_path))
    rekeyer = chain.rekeyer(since_kid=state.from_kid)
    renamed: dict[str, int] = {}
    with db.transaction() as conn:
        late = db.unmapped()
        if late:
            db.add_pairs([(old, rekeyer.rekey(old)) for old in late], batch_size=batch_size)
            return None
        conn.execute(
            "UPDATE outbox SET status = 'superseded', last_error = 'tenant key rotated' "
            "WHERE status = 'pending' AND subject IS NOT NULL"
        )
        for table, column in db.columns():
            cursor = conn.execute(
                f'UPDATE "{table}" SET "{column}" = (SELECT new FROM rekey_pairs '
                f'WHERE old = "{table}"."{column}") '
                f'WHERE "{column}" IN (SELECT old FROM rekey_pairs)'
            )
            renamed[table] = renamed.get(table, 0) + max(cursor.rowcount, 0)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [("tenant_key_path", state.chain_path), (KID_META, state.to_kid)],
        )
        conn.execute("DELETE FROM meta WHERE key = ?", (STATE_META,))
        conn.execute("DELETE FROM rekey_pairs")
    return renamed


def rekey_edge(
    *,
    store: EdgeStore,
    settings: ClientSettings,
    transport: RekeyTransport | None,
    new_key: Path | None = None,
    generate: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: RekeyProgress | None = None,
) -> RekeyReport:
    """Rotate the edge to a new tenant key generation, or finish an interrupted rotation.

    Parameters
    ----------
    store : EdgeStore
        The edge's store.
    settings : ClientSettings
        Edge directory and key path override.
    transport : RekeyTransport or None
        Sends batches to the server; ``None`` for an edge that never registered (the server
        holds nothing of it, so the store is re-keyed locally only).
    new_key : Path or None
        A chain file extending the edge's current chain (made by ``rotate_tenant_key_file``
        where the tenant key is kept, and distributed to every edge).
    generate : bool
        Generate the next generation here instead (an edge with its own tenant key); the new
        chain file is ``<edge_dir>/tenant.key.g<N>`` (mode 0600).
    batch_size : int
        Pairs per batch (1 to ``models.REKEY_BATCH_MAX``).
    progress : RekeyProgress or None
        Called with ``(batches done, batches due)``.

    Returns
    -------
    RekeyReport
        Key ids, counts and whether the store switched.

    Raises
    ------
    EdgeConfigError
        If nothing is to be done, both or the wrong key is given, or a different rotation is
        unfinished.
    KeyFileError
        If a key file cannot be used.
    ServerUnavailableError
        If the server is unreachable (re-run later; confirmed batches are kept).
    UploadRefusedError
        If the server refuses a batch (e.g. 409: a pseudonym conflict) or the credentials.
    """
    if new_key is not None and generate:
        raise EdgeConfigError("pass either --new-key FILE or --generate, not both")
    if not 1 <= batch_size <= 1000:
        raise ValueError("batch_size must be between 1 and 1000")
    started = time.perf_counter()
    db = RekeyDB(store.path)
    try:
        state = _state(store)
        resumed = state is not None
        if state is None:
            state = _plan(store=store, db=db, settings=settings, new_key=new_key,
                          generate=generate, batch_size=batch_size)  # fmt: skip
        elif new_key is not None and load_tenant_key_chain(new_key).current_kid != state.to_kid:
            raise EdgeConfigError(
                f"a rotation to {state.to_kid} is unfinished; run 'fedprofile edge rekey' "
                "without --new-key to finish it first"
            )
        report = RekeyReport(from_kid=state.from_kid, to_kid=state.to_kid,
                             chain_path=state.chain_path, resumed=resumed,
                             uploaded=transport is not None)  # fmt: skip
        renamed: dict[str, int] | None = None
        while renamed is None:  # 2. upload, 3. switch; again if subjects arrived meanwhile
            _upload(db=db, state=state, transport=transport, report=report, progress=progress)
            report.subjects = db.count()
            renamed = _switch(db=db, state=state, batch_size=batch_size)
    finally:
        db.close()
    report.rows_renamed = renamed
    report.switched = True
    report.elapsed = time.perf_counter() - started
    logger.info("rekey finished: %d subject(s) now under %s", report.subjects, report.to_kid)
    return report
