"""Model registry routes: list versions, the newest version of a model, one version's weights.

Metadata (``GET /models``, ``GET /models/{model}/latest``) is for edges and readers (agents,
analysts, admins); the weights (``GET /models/{model}/versions/{version}/weights``) for edges
and admins. Thin: the registry is ``server.crud.model_registry``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from models import CONTENT_SHA256_HEADER, MODEL_VERSION_HEADER

from ...crud.model_registry import get_version_weights, latest_version, list_versions
from ...tables.model_version import ModelVersionPublic
from ...tables.token import Role
from ..deps import SessionDep, require_role

router = APIRouter(tags=["models"])

#: A model name: the run-config task (``behaviour``, ``text``) or another registered name.
MODEL_NAME_REGEX = r"^[a-z][a-z0-9_-]{0,39}$"
ModelPath = Annotated[
    str, Path(max_length=40, pattern=MODEL_NAME_REGEX, description="model name (e.g. text)")
]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="version number (1, 2, 3...)")]

model_readers = Depends(require_role(Role.EDGE, Role.AGENT, Role.ANALYST, Role.ADMIN))
weights_readers = Depends(require_role(Role.EDGE, Role.ADMIN))

#: OpenAPI description of the weights download (a binary body and its two headers).
WEIGHTS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the weights: an .npz archive of named arrays (no pickle)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            MODEL_VERSION_HEADER: {
                "description": "the version's label, <model>:v<version> (e.g. text:v3)",
                "schema": {"type": "string"},
            },
            CONTENT_SHA256_HEADER: {
                "description": "hex SHA-256 of the body as published; check it before loading",
                "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
        },
    }
}


@router.get("/models", dependencies=[model_readers])
def get_models(
    session: SessionDep,
    model: Annotated[
        str | None, Query(max_length=40, pattern=MODEL_NAME_REGEX, description="only this model")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ModelVersionPublic]:
    """Return the newest model versions' metadata, newest first (no weights)."""
    return list_versions(session=session, model=model, limit=limit)


@router.get("/models/{model}/latest", dependencies=[model_readers])
def get_latest_model(model: ModelPath, session: SessionDep) -> ModelVersionPublic:
    """Return the metadata of the model's newest version (404 ``not_found`` when none)."""
    return latest_version(session=session, model=model)


@router.get(
    "/models/{model}/versions/{version}/weights",
    dependencies=[weights_readers],
    response_class=Response,
    responses=WEIGHTS_RESPONSE,
)
def get_model_weights(model: ModelPath, version: VersionPath, session: SessionDep) -> Response:
    """Return one version's weights with ``X-Model-Version`` and ``X-Content-SHA256``."""
    weights = get_version_weights(session=session, model=model, version=version)
    return Response(
        content=weights.data,
        media_type="application/octet-stream",
        headers={MODEL_VERSION_HEADER: weights.label, CONTENT_SHA256_HEADER: weights.sha256},
    )
