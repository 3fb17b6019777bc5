"""Purposes and notices: ``GET /purposes``, ``GET /notices`` (public), ``POST /notices``.

The purpose list and the field catalogue are what every privacy notice must tell (PIPL Art.
17; ISO/IEC 29184 5.3), so anyone may read them, in Chinese and English. Publishing a notice
version is a compliance officer's act; a material version pauses older grants of its purposes
until each subject renews them.
"""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel

from consent import Notice, NoticeDraft

from ...crud.notice import list_notices, publish_notice
from ..deps import (
    AuditDep,
    CatalogueDep,
    ClockDep,
    OfficerPrincipal,
    PurposesDep,
    SessionDep,
)

router = APIRouter(tags=["notices"])


class PurposeOut(BaseModel):
    """A registered purpose with its DPV term, labels and flags."""

    name: str
    dpv: str
    label_zh: str
    label_en: str
    description_zh: str
    description_en: str
    legal_basis: str
    necessary: bool
    personalization: bool


class FieldOut(BaseModel):
    """A catalogued field: category, sensitivity, purposes, basis, retention, meaning."""

    name: str
    category: str
    sensitivity: str
    purposes: list[str]
    legal_basis: str
    retention_days: int
    meaning_zh: str
    meaning_en: str


class PurposeList(BaseModel):
    """The purpose list and field catalogue in force, with their versions."""

    purposes_version: str
    catalogue_version: str
    purposes: list[PurposeOut]
    fields: list[FieldOut]


class PublishedNotice(BaseModel):
    """A published notice and, per covered purpose, how many consents now need renewal."""

    notice: Notice
    renewal_required: dict[str, int]


@router.get("/purposes")
def get_purposes_route(purposes: PurposesDep, catalogue: CatalogueDep) -> PurposeList:
    """Return every purpose (DPV term, zh/en labels) and every catalogued field (public)."""
    return PurposeList(
        purposes_version=purposes.version,
        catalogue_version=catalogue.version,
        purposes=[
            PurposeOut(
                name=spec.name.value,
                dpv=spec.dpv_curie,
                label_zh=spec.label_zh,
                label_en=spec.label_en,
                description_zh=spec.description_zh,
                description_en=spec.description_en,
                legal_basis=spec.legal_basis.value,
                necessary=spec.necessary,
                personalization=spec.personalization,
            )
            for spec in purposes
        ],
        fields=[
            FieldOut(
                name=f.name,
                category=f.category,
                sensitivity=f.sensitivity.value,
                purposes=[p.value for p in f.purposes],
                legal_basis=f.legal_basis.value,
                retention_days=f.retention_days,
                meaning_zh=f.meaning_zh,
                meaning_en=f.meaning_en,
            )
            for f in catalogue
        ],
    )


@router.get("/notices")
def get_notices(session: SessionDep) -> list[Notice]:
    """Return every published notice version, oldest first (public: notices are published)."""
    return list_notices(session=session)


@router.post("/notices", status_code=status.HTTP_201_CREATED)
def post_notice(
    draft: NoticeDraft,
    session: SessionDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
    clock: ClockDep,
) -> PublishedNotice:
    """Publish a notice version now (409 if the label exists). Audited as ``notice.publish``.

    A material version pauses every older grant of its purposes until renewed: reads filter
    those fields out and uploads for those purposes are refused (``consent_renewal_required``).
    """
    notice, renewals = publish_notice(
        session=session, draft=draft, principal=principal, audit=audit, at=clock()
    )
    return PublishedNotice(notice=notice, renewal_required=renewals)
