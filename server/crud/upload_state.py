"""What a batch of profile uploads reads and writes, loaded up front in one query per table.

:class:`UploadBatchState` holds, for the subjects and idempotency keys of one batch, the
edge's upload receipts, the subjects' consent, subject rows and stored profile fields. The
upload path decides every item against it in memory, applies accepted items to it (so a later
item of the same batch sees an earlier one, exactly as consecutive requests would), and writes
the changes with :meth:`UploadBatchState.flush`: a few multi-row Core statements, no ORM
objects (building them cost more than the database work). Load it only after taking the audit
chain's lock (``server.audit.append.lock_chain``) so nothing it holds can change before the
commit.

Sensitive fields are sealed under the subject's data key before they are held for writing
(``server.crud.subject_keys.SubjectKeys``: one more query, only for batches that store a
sensitive field; a subject's first sensitive field creates its key).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from pydantic import TypeAdapter
from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from consent import ConsentState, Purpose
from models import ExplanationItem, ProfileFieldIn
from privacy import MasterKeyRing

from ..tables.profile_field import ProfileField
from ..tables.subject import Subject
from ..tables.upload_receipt import UploadReceipt
from .consent import consent_states
from .profile_store import sealed_columns
from .subject_keys import SubjectKeys

_FIELD = ProfileField.metadata.tables[ProfileField.__tablename__]
_SUBJECT = Subject.metadata.tables[Subject.__tablename__]
_RECEIPT = UploadReceipt.metadata.tables[UploadReceipt.__tablename__]
#: Serialiser of ``explanation_json`` (compact JSON, UTF-8).
_EXPLANATIONS = TypeAdapter(list[ExplanationItem])
#: Columns an upload sets on a profile field (besides its key).
_FIELD_VALUES = (
    "value_json",
    "confidence",
    "explanation_json",
    "provisional",
    "computed_at",
    "source_edge_id",
    "source_channel",
    "uploaded_purpose",
    "updated_at",
    "value_ciphertext",
    "key_version",
)


@dataclass(frozen=True)
class Receipt:
    """An upload receipt as the batch needs it.

    Parameters
    ----------
    request_hash : str
        ``request_hash`` of the accepted request.
    response_json : str
        The answer that was given.
    """

    request_hash: str
    response_json: str


class UploadBatchState:
    """The stored rows one batch of uploads depends on, and its pending changes.

    Parameters
    ----------
    session : Session
        Session of the batch's transaction.
    edge_id : str
        The uploading edge (receipts are scoped per edge).
    receipts : dict[str, Receipt]
        The edge's receipts for the batch's keys, by key.
    consents : dict[str, ConsentState]
        Consent state of each subject of the batch.
    last_seen : dict[str, datetime]
        ``last_seen_at`` of the stored subjects, by pseudonym.
    field_ids : dict[tuple[str, str], int]
        Row ids of this edge's stored contributions for the batch's subjects, by
        (subject, name).
    field_purposes : dict[int, str] or None
        ``uploaded_purpose`` of those rows, by row id (what a ``replace`` upload may drop).
    keys : SubjectKeys or None
        Data keys of the batch's subjects; required to store a sensitive field.
    sensitive : Collection[str]
        Names of the fields stored sealed (the catalogue's sensitive fields).
    """

    def __init__(
        self,
        *,
        session: Session,
        edge_id: str,
        receipts: dict[str, Receipt],
        consents: dict[str, ConsentState],
        last_seen: dict[str, datetime],
        field_ids: dict[tuple[str, str], int],
        keys: SubjectKeys | None = None,
        sensitive: Collection[str] = (),
        field_purposes: dict[int, str] | None = None,
    ) -> None:
        self._session = session
        self._keys = keys
        self._sensitive = frozenset(sensitive)
        self._edge_id = edge_id
        self._receipts = receipts
        self._consents = consents
        self._last_seen = last_seen
        self._field_ids = field_ids
        self._field_purposes = field_purposes or {}
        self._dropped_fields: set[int] = set()
        self._new_subjects: dict[str, datetime] = {}
        self._seen_subjects: dict[str, datetime] = {}
        self._new_fields: dict[tuple[str, str], dict[str, Any]] = {}
        self._changed_fields: dict[int, dict[str, Any]] = {}
        self._new_receipts: list[dict[str, Any]] = []

    @classmethod
    def load(
        cls,
        *,
        session: Session,
        edge_id: str,
        subjects: Iterable[str],
        keys: Iterable[str],
        master_keys: MasterKeyRing | None = None,
        sensitive: Collection[str] = (),
    ) -> Self:
        """Load the state of a batch: four queries whatever its size.

        Parameters
        ----------
        session : Session
            Session of the batch's transaction (the chain lock already taken).
        edge_id : str
            The uploading edge.
        subjects : Iterable[str]
            Pseudonyms of the batch's items.
        keys : Iterable[str]
            Idempotency keys of the batch's items.
        master_keys : MasterKeyRing or None
            The master key ring; required to store a sensitive field.
        sensitive : Collection[str]
            Names of the fields to store sealed (the catalogue's sensitive fields).

        Returns
        -------
        UploadBatchState
            The loaded state, with no pending changes.
        """
        wanted, key_set = sorted(set(subjects)), sorted(set(keys))
        connection = session.connection()
        receipts = connection.execute(
            sa_select(
                _RECEIPT.c.idempotency_key, _RECEIPT.c.request_hash, _RECEIPT.c.response_json
            ).where(_RECEIPT.c.edge_id == edge_id, _RECEIPT.c.idempotency_key.in_(key_set))
        ).all()
        seen = connection.execute(
            sa_select(_SUBJECT.c.pseudonym, _SUBJECT.c.last_seen_at).where(
                _SUBJECT.c.pseudonym.in_(wanted)
            )
        ).all()
        stored = connection.execute(
            sa_select(
                _FIELD.c.id, _FIELD.c.subject, _FIELD.c.name, _FIELD.c.uploaded_purpose
            ).where(_FIELD.c.subject.in_(wanted), _FIELD.c.source_edge_id == edge_id)
        ).all()
        return cls(
            session=session,
            edge_id=edge_id,
            receipts={str(r[0]): Receipt(str(r[1]), str(r[2])) for r in receipts},
            consents=consent_states(session=session, subjects=wanted),
            last_seen={str(r[0]): r[1] for r in seen},
            field_ids={(str(r[1]), str(r[2])): int(r[0]) for r in stored},
            field_purposes={int(r[0]): str(r[3]) for r in stored},
            keys=None
            if master_keys is None
            else SubjectKeys(session=session, subjects=wanted, master_keys=master_keys),
            sensitive=sensitive,
        )

    def receipt(self, key: str) -> Receipt | None:
        """Return the receipt of ``key`` (stored, or accepted earlier in this batch).

        Parameters
        ----------
        key : str
            An idempotency key of the batch.

        Returns
        -------
        Receipt or None
            The receipt, or None when the key is new.
        """
        return self._receipts.get(key)

    def consent(self, subject: str) -> ConsentState:
        """Return the subject's consent state as loaded.

        Parameters
        ----------
        subject : str
            A pseudonym of the batch.

        Returns
        -------
        ConsentState
            Its state (empty when the server holds no consent event for it).
        """
        return self._consents.get(subject) or ConsentState()

    def store(
        self,
        *,
        subject: str,
        fields: Sequence[ProfileFieldIn],
        purpose: Purpose,
        channel: str | None,
        at: datetime,
        replace: bool = False,
    ) -> list[str]:
        """Apply an accepted upload: touch the subject, insert or replace its fields.

        Only this edge's contributions change; other edges' rows for the same fields stay.

        Parameters
        ----------
        subject : str
            The pseudonym.
        fields : Sequence[ProfileFieldIn]
            Already-checked fields with unique names.
        purpose : Purpose
            Purpose declared by the upload.
        channel : str or None
            The uploading edge's channel.
        at : datetime
            Write time.
        replace : bool
            A complete snapshot: also drop this edge's contributions for the subject that
            were uploaded for ``purpose`` and are not in ``fields``.

        Returns
        -------
        list[str]
            Names written, sorted.

        Raises
        ------
        ValueError
            If a field is sensitive and the state was loaded without ``master_keys``
            (nothing sensitive is ever stored in plain text).
        DecryptionError
            If the subject's stored data key cannot be unwrapped (opaque).
        """
        self._touch_subject(subject, at)
        for field in fields:
            values: dict[str, Any] = {
                **self._value_columns(subject, field, at),
                "confidence": field.confidence,
                "provisional": field.provisional,
                "computed_at": field.computed_at,
                "source_edge_id": self._edge_id,
                "source_channel": channel,
                "uploaded_purpose": purpose.value,
                "updated_at": at,
            }
            row_id = self._field_ids.get((subject, field.name))
            if row_id is not None:
                self._changed_fields[row_id] = values
                self._field_purposes[row_id] = purpose.value
                self._dropped_fields.discard(row_id)
            else:
                self._new_fields[(subject, field.name)] = {
                    "subject": subject,
                    "name": field.name,
                    **values,
                }
        if replace:
            self._drop_missing(subject, {f.name for f in fields}, purpose)
        return sorted(f.name for f in fields)

    def _drop_missing(self, subject: str, kept: Collection[str], purpose: Purpose) -> None:
        """Mark this edge's other contributions for (subject, purpose) for deletion."""
        for (row_subject, name), row_id in self._field_ids.items():
            if (
                row_subject == subject
                and name not in kept
                and self._field_purposes.get(row_id) == purpose.value
            ):
                self._dropped_fields.add(row_id)
                self._changed_fields.pop(row_id, None)

    def add_receipt(self, *, key: str, digest: str, response_json: str, at: datetime) -> None:
        """Record the receipt of an accepted upload.

        Parameters
        ----------
        key : str
            Its idempotency key.
        digest : str
            ``request_hash`` of the upload.
        response_json : str
            The answer that was given.
        at : datetime
            Write time.
        """
        self._receipts[key] = Receipt(digest, response_json)
        self._new_receipts.append(
            {
                "edge_id": self._edge_id,
                "idempotency_key": key,
                "request_hash": digest,
                "response_json": response_json,
                "created_at": at,
            }
        )

    def flush(self) -> None:
        """Write the pending changes once, at the end of the batch; no commit.

        New subjects go first, then new data keys, for the foreign keys. Call it once: rows
        inserted here are not tracked afterwards.
        """
        connection = self._session.connection()
        if self._new_subjects:
            connection.execute(
                insert(_SUBJECT),
                [
                    {"pseudonym": s, "first_seen_at": at, "last_seen_at": at}
                    for s, at in self._new_subjects.items()
                ],
            )
        if self._seen_subjects:
            connection.execute(
                update(_SUBJECT)
                .where(_SUBJECT.c.pseudonym == bindparam("key"))
                .values(last_seen_at=bindparam("seen")),
                [{"key": s, "seen": at} for s, at in self._seen_subjects.items()],
            )
        if self._keys is not None:
            self._keys.flush()
        if self._dropped_fields:
            connection.execute(delete(_FIELD).where(_FIELD.c.id.in_(sorted(self._dropped_fields))))
        if self._new_fields:
            connection.execute(insert(_FIELD), list(self._new_fields.values()))
        if self._changed_fields:
            connection.execute(
                update(_FIELD)
                .where(_FIELD.c.id == bindparam("row_id"))
                .values({name: bindparam(f"v_{name}") for name in _FIELD_VALUES}),
                [
                    {"row_id": row_id, **{f"v_{k}": v for k, v in values.items()}}
                    for row_id, values in self._changed_fields.items()
                ],
            )
        if self._new_receipts:
            connection.execute(insert(_RECEIPT), self._new_receipts)

    def _value_columns(self, subject: str, field: ProfileFieldIn, at: datetime) -> dict[str, Any]:
        """Plain value columns of a normal field, sealed ones of a sensitive field."""
        if field.name not in self._sensitive:
            return {
                "value_json": json.dumps(field.value),
                "explanation_json": _EXPLANATIONS.dump_json(field.explanation).decode(),
                "value_ciphertext": None,
                "key_version": None,
            }
        if self._keys is None:
            raise ValueError("master_keys is required to store sensitive fields")
        return sealed_columns(
            cipher=self._keys.cipher(subject, at=at),
            name=field.name,
            value=field.value,
            explanation=field.explanation,
        )

    def _touch_subject(self, subject: str, at: datetime) -> None:
        """Create the subject or advance its ``last_seen_at`` (pending)."""
        if subject in self._new_subjects:
            return
        last = self._seen_subjects.get(subject, self._last_seen.get(subject))
        if last is None:
            self._new_subjects[subject] = at
        elif last < at:
            self._seen_subjects[subject] = at
