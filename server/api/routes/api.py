"""The ``/api/v1`` router composed of every resource router."""

from __future__ import annotations

from fastapi import APIRouter

from models import API_PREFIX

from . import audit, consents, edges, health, keys, ledgers, profiles, training


def build_api_router() -> APIRouter:
    """Return a router holding every API route under ``/api/v1``.

    Returns
    -------
    APIRouter
        The composed router.
    """
    router = APIRouter(prefix=API_PREFIX)
    for module in (edges, consents, profiles, ledgers, training, health, audit, keys):
        router.include_router(module.router)
    return router
