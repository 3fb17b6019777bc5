"""Stored profile fields: list, seal and open, convert to the wire shape, purge.

Writes go through ``server.crud.upload_state`` (one batch at a time). Sensitive fields are
stored sealed (:func:`sealed_columns`): value and explanation encrypted together under the
subject's data key; :func:`to_field_out` opens them with the subject's ``FieldCipher``
(``server.crud.subject_keys.subject_cipher``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from consent import ConsentState, FieldCatalogue, evaluate
from models import ExplanationItem, ProfileFieldOut
from privacy import DecryptionError, FieldCipher

from ..tables.profile_field import ProfileField

#: ``explanation_json`` of a sealed field (its explanation is inside the ciphertext).
SEALED_EXPLANATION = "[]"


def fields_of(*, session: Session, subject: str) -> list[ProfileField]:
    """Return the subject's stored fields, by name.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym.

    Returns
    -------
    list[ProfileField]
        The rows.
    """
    stmt = (
        select(ProfileField)
        .where(col(ProfileField.subject) == subject)
        .order_by(col(ProfileField.name))
    )
    return list(session.exec(stmt).all())


def purge_disallowed_fields_many(
    *,
    session: Session,
    states: Mapping[str, ConsentState],
    catalogue: FieldCatalogue,
    at: datetime,
) -> dict[str, list[str]]:
    """Apply ``purge_disallowed_fields`` to many subjects, loading their rows in few queries.

    Parameters
    ----------
    session : Session
        Session of the enclosing write.
    states : Mapping[str, ConsentState]
        Each subject's current consent.
    catalogue : FieldCatalogue
        The catalogue in force.
    at : datetime
        The moment of evaluation.

    Returns
    -------
    dict[str, list[str]]
        Purged field names (sorted) per subject; subjects with nothing purged map to ``[]``.
    """
    purged: dict[str, list[str]] = {subject: [] for subject in states}
    subjects = sorted(states)
    for start in range(0, len(subjects), 500):
        chunk = subjects[start : start + 500]
        rows = session.exec(select(ProfileField).where(col(ProfileField.subject).in_(chunk))).all()
        for row in rows:
            spec = catalogue.by_name.get(row.name)
            consent = states[row.subject]
            allowed = spec is not None and any(
                evaluate(
                    catalogue=catalogue, consent=consent, field=row.name, purpose=p, at=at
                ).allowed
                for p in spec.purposes
            )
            if not allowed:
                purged[row.subject].append(row.name)
                session.delete(row)
    session.flush()
    return {subject: sorted(names) for subject, names in purged.items()}


def sealed_columns(
    *, cipher: FieldCipher, name: str, value: Any, explanation: Sequence[ExplanationItem]
) -> dict[str, Any]:
    """Return the value columns of a sealed field: value and explanation encrypted together.

    Parameters
    ----------
    cipher : FieldCipher
        The subject's cipher.
    name : str
        The field name (bound into the ciphertext's associated data).
    value : Any
        The JSON value.
    explanation : Sequence[ExplanationItem]
        The explanation items.

    Returns
    -------
    dict[str, Any]
        ``value_json`` (None), ``explanation_json``, ``value_ciphertext`` and ``key_version``.
    """
    payload = {"value": value, "explanation": [i.model_dump(mode="json") for i in explanation]}
    plaintext = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return {
        "value_json": None,
        "explanation_json": SEALED_EXPLANATION,
        "value_ciphertext": cipher.encrypt(field=name, plaintext=plaintext),
        "key_version": cipher.key_version,
    }


def to_field_out(row: ProfileField, *, cipher: FieldCipher | None = None) -> ProfileFieldOut:
    """Return the wire form of a stored field, opening it if it is sealed.

    Parameters
    ----------
    row : ProfileField
        A stored field.
    cipher : FieldCipher or None
        The row subject's cipher; needed only for sealed rows.

    Returns
    -------
    ProfileFieldOut
        The field as returned to readers.

    Raises
    ------
    DecryptionError
        If the row is sealed and ``cipher`` is missing, belongs to another subject or key
        version, or does not open it (opaque).
    """
    if row.value_ciphertext is not None:
        if cipher is None or cipher.subject != row.subject or cipher.key_version != row.key_version:
            raise DecryptionError()
        payload = json.loads(cipher.decrypt(field=row.name, ciphertext=row.value_ciphertext))
        value, explanation = payload["value"], payload["explanation"]
    else:
        value = json.loads(row.value_json or "null")
        explanation = json.loads(row.explanation_json)
    return ProfileFieldOut(
        name=row.name,
        value=value,
        confidence=row.confidence,
        explanation=[ExplanationItem.model_validate(i) for i in explanation],
        provisional=row.provisional,
        computed_at=row.computed_at,
        source_channel=row.source_channel,
    )


def is_expired(*, row: ProfileField, catalogue: FieldCatalogue, at: datetime) -> bool:
    """Whether the field is past the catalogue's retention period at ``at``.

    Parameters
    ----------
    row : ProfileField
        A stored field.
    catalogue : FieldCatalogue
        The catalogue in force.
    at : datetime
        The moment of use.

    Returns
    -------
    bool
        True if ``computed_at + retention_days`` is before ``at`` (or the field is not
        catalogued any more).
    """
    spec = catalogue.by_name.get(row.name)
    if spec is None:
        return True
    return row.computed_at + timedelta(days=spec.retention_days) < at


def purge_disallowed_fields(
    *,
    session: Session,
    subject: str,
    catalogue: FieldCatalogue,
    consent: ConsentState,
    at: datetime,
) -> list[str]:
    """Delete the subject's fields that no purpose allows any more (no commit).

    A field is kept while at least one purpose the catalogue lists for it passes
    ``consent.evaluate`` at ``at`` (separate consent included for sensitive fields).

    Parameters
    ----------
    session : Session
        Session of the enclosing write.
    subject : str
        The pseudonym.
    catalogue : FieldCatalogue
        The catalogue in force.
    consent : ConsentState
        The subject's current consent.
    at : datetime
        The moment of evaluation.

    Returns
    -------
    list[str]
        Names of the purged fields, sorted.
    """
    return purge_disallowed_fields_many(
        session=session, states={subject: consent}, catalogue=catalogue, at=at
    )[subject]
