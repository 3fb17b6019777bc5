"""Rectification (PIPL Art. 46, GDPR Art. 16): correct or delete one stored field.

A rectification request carries a ``consent.Rectification``: a corrected value for one
catalogued field, or its deletion. :func:`check_rectification` validates it when the request
is received (catalogued field, value of the right shape); :func:`apply_rectification` carries
it out when the request is executed: the stored value is replaced (sealed again under the
subject's data key when the field is sensitive) or the row is deleted, and the field is
suppressed so that no edge overwrites the correction with its old value (the edges learn of
it through the feed).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlmodel import Session, col, select

from consent import FieldCatalogue, Rectification, Sensitivity
from privacy import MasterKeyRing

from ..errors import RequestInvalidError
from ..tables.profile_field import ProfileField
from .profile_store import sealed_columns
from .restriction import suppress_field
from .subject import touch_subject
from .subject_keys import SubjectKeys

logger = logging.getLogger(__name__)

#: Suppression reasons written by rectification.
RECTIFIED = "rectified"
RECTIFIED_DELETED = "rectified_deleted"


def check_rectification(*, rectification: Rectification, catalogue: FieldCatalogue) -> None:
    """Refuse a rectification of an uncatalogued field or with a value of the wrong shape.

    Parameters
    ----------
    rectification : Rectification
        The proposal.
    catalogue : FieldCatalogue
        The catalogue in force.

    Raises
    ------
    RequestInvalidError
        If the field is not catalogued or the value does not fit its type.
    """
    spec = catalogue.by_name.get(rectification.field)
    if spec is None:
        raise RequestInvalidError("rectification names a field that is not in the field catalogue")
    if not rectification.delete:
        problems = spec.value_problems(rectification.value)
        if problems:
            raise RequestInvalidError("rectified value refused: " + "; ".join(problems))


def apply_rectification(
    *,
    session: Session,
    subject: str,
    rectification: Rectification,
    catalogue: FieldCatalogue,
    master_keys: MasterKeyRing | None,
    request_id: str,
    at: datetime,
) -> dict[str, object]:
    """Correct or delete one field of a subject and suppress it for uploads (no commit).

    The caller holds the audit chain's lock and writes the audit entry.

    Parameters
    ----------
    session : Session
        Session of the executing request.
    subject : str
        The pseudonym.
    rectification : Rectification
        What to do.
    catalogue : FieldCatalogue
        The catalogue in force (re-checked: it may have changed since the request arrived).
    master_keys : MasterKeyRing or None
        Needed to seal a corrected sensitive field.
    request_id : str
        The request being executed.
    at : datetime
        When.

    Returns
    -------
    dict[str, object]
        Evidence: the field name and ``action`` (``corrected``, ``deleted`` or
        ``not_held``: the server held no value, the field is only suppressed). Never the value.

    Raises
    ------
    RequestInvalidError
        If the field or value no longer fits the catalogue, or a sensitive value must be
        sealed and no master key ring is available.
    """
    check_rectification(rectification=rectification, catalogue=catalogue)
    spec = catalogue.by_name[rectification.field]
    rows = session.exec(
        select(ProfileField)
        .where(col(ProfileField.subject) == subject, col(ProfileField.name) == spec.name)
        .order_by(col(ProfileField.id))
    ).all()
    action = "not_held"
    # Every edge's contribution goes; a correction stays as one officer row (no edge), which
    # reads put above any channel's value.
    row = rows[0] if rows and not rectification.delete else None
    for other in rows:
        if other is not row:
            session.delete(other)
    if rows and rectification.delete:
        action = "deleted"
    elif row is not None:
        if spec.sensitivity is Sensitivity.SENSITIVE:
            if master_keys is None:
                raise RequestInvalidError(
                    "a sensitive field can only be corrected when the master key ring is loaded"
                )
            keys = SubjectKeys(session=session, subjects=[subject], master_keys=master_keys)
            cipher = keys.cipher(subject, at=at)
            keys.flush()
            for name, value in sealed_columns(
                cipher=cipher, name=spec.name, value=rectification.value, explanation=[]
            ).items():
                setattr(row, name, value)
        else:
            row.value_json = json.dumps(rectification.value, ensure_ascii=False)
            row.explanation_json = "[]"
        row.confidence = None
        row.provisional = False
        row.computed_at = at
        row.updated_at = at
        row.source_edge_id = None
        row.source_channel = None
        session.add(row)
        action = "corrected"
    touch_subject(session=session, subject=subject, at=at)
    session.flush()
    reason = RECTIFIED_DELETED if rectification.delete else RECTIFIED
    suppress_field(
        session=session,
        subject=subject,
        field=spec.name,
        reason=reason,
        at=at,
        request_id=request_id,
    )
    logger.info("rectification of request %s: %s", request_id, action)
    return {"field": spec.name, "action": action}
