"""The ``/api/v1`` router composed of every resource router."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from models import API_PREFIX

from ..errors import error_responses
from ..text_guard import refuse_unsafe_text
from . import (
    audit,
    consents,
    decisions,
    dsr,
    edges,
    feed,
    health,
    identity,
    keys,
    ledgers,
    me,
    notices,
    profiles,
    registry,
    rekey,
    tokens,
    training,
)


def build_api_router() -> APIRouter:
    """Return a router holding every API route under ``/api/v1``.

    Returns
    -------
    APIRouter
        The composed router.
    """
    router = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(refuse_unsafe_text)],
        responses=error_responses(),
    )
    for module in (
        feed, edges, consents, profiles, ledgers, training, registry, health, audit, keys, dsr,
    ):  # fmt: skip
        router.include_router(module.router)
    router.include_router(rekey.router)
    for module in (notices, me, tokens, identity, decisions):
        router.include_router(module.router)
    return router
