"""Fetch the newest global model from the server's registry, check it, and keep it for scoring.

An edge that missed a federated run (offline, or not part of it), or a new edge, still
scores with the newest model: ``fedprofile edge model fetch`` asks the server's registry
(``GET /models/{model}/latest``), downloads the weights (``.../versions/{n}/weights``),
checks their SHA-256 against both the registry's record and the response header, rebuilds
the model from the registry's architecture, evaluates it on this edge's own held-out
consented subjects (nothing leaves the edge; no privacy budget is spent) and keeps it with
its version label (``text:v7``). Scoring (``client.scoring``, ``client.text_profile``) then
uses it under the usual quality gate and names the version. An edge that already holds the
newest version downloads nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from models import (
    CONTENT_SHA256_HEADER,
    MODEL_VERSION_HEADER,
    model_version_label,
    parse_run_config,
)

from .config import ClientSettings
from .credentials import load_credentials
from .errors import ClientError, EdgeConfigError, LearningDataError, ServerUnavailableError
from .server_http import server_client
from .store import EdgeStore

logger = logging.getLogger(__name__)

#: Models an edge can fetch (the run-config tasks).
FETCHABLE_MODELS: tuple[str, ...] = ("behaviour", "text")


class ModelFetchError(ClientError):
    """The server's model could not be used; the message says why (never weights or data)."""


@dataclass(frozen=True)
class FetchReport:
    """What a fetch did.

    Parameters
    ----------
    model : str
        The model asked for.
    status : {"fetched", "current", "none"}
        Downloaded a newer version; already held the newest; the registry holds none.
    version : str or None
        The version the edge now holds (``text:v7``).
    previous : str or None
        The version it held before (``""`` for a model received without a label).
    held_out : int
        Held-out examples the fetched model was evaluated on here.
    head_aucs : dict[str, float]
        Its AUC per head on them (the scoring quality gate reads these).
    """

    model: str
    status: Literal["fetched", "current", "none"]
    version: str | None
    previous: str | None
    held_out: int = 0
    head_aucs: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "model": self.model,
            "status": self.status,
            "version": self.version or "none",
            "previous": self.previous or "none",
            "held_out": self.held_out,
            "head_aucs": {k: round(v, 3) for k, v in sorted(self.head_aucs.items())},
        }


def _get(http: httpx.Client, path: str, *, server_url: str) -> httpx.Response:
    """GET; transport failures become ``ServerUnavailableError``."""
    try:
        return http.get(path)
    except httpx.HTTPError:
        raise ServerUnavailableError(server_url, pending=0) from None


def _checked(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code in (401, 403):
        raise EdgeConfigError(
            f"the server refused this edge's credentials for {what}; check the edge is "
            "registered (fedprofile edge sync) and its token not revoked"
        )
    if response.status_code != 200:
        raise ModelFetchError(f"the server answered {response.status_code} for {what}")
    return response


def _evaluate_here(
    store: EdgeStore, edge_dir: Path, *, model: str, config: dict[str, Any], weights: bytes,
    now: datetime, server_round: int,
) -> tuple[dict[str, Any], int, dict[str, float]]:  # fmt: skip
    """Rebuild the model, score this edge's held-out subjects, record the quality.

    Returns the architecture to keep with the weights, the held-out count and the AUCs.
    """
    from models.weights import weights_from_bytes

    from .learning.loop import evaluate
    from .learning.source import ModelQuality
    from .learning.store_source import StoreSession
    from .scoring import record_model_quality

    run = parse_run_config({}, {"task": model, **config})
    session = StoreSession(store=store, edge_dir=edge_dir)
    try:
        data = session.data(config=run, at=now)
    except LearningDataError as exc:
        logger.info("no held-out data to evaluate the fetched %s model: %s", model, exc.reason)
        from .learning.store_source import behaviour_learner
        from .learning.text import text_learner

        learner = text_learner(run) if model == "text" else behaviour_learner(run)
        try:
            learner.model_from_weights(weights_from_bytes(weights))
        except (KeyError, TypeError, ValueError) as bad:
            raise ModelFetchError(f"the fetched {model} model does not fit: {bad}") from None
        return learner.architecture, 0, {}
    try:
        net = data.learner.model_from_weights(weights_from_bytes(weights))
    except (KeyError, TypeError, ValueError) as bad:
        raise ModelFetchError(f"the fetched {model} model does not fit: {bad}") from None
    result = evaluate(net, data.holdout, learner=data.learner)
    record_model_quality(
        store,
        model,
        ModelQuality(
            server_round=server_round,
            head_aucs=dict(result.head_aucs),
            num_examples=result.num_examples,
        ),
    )
    return data.learner.architecture, result.num_examples, dict(result.head_aucs)


def fetch_latest_model(
    *,
    store: EdgeStore,
    settings: ClientSettings,
    model: str,
    now: datetime,
    transport: httpx.BaseTransport | None = None,
) -> FetchReport:
    """Fetch the registry's newest version of ``model`` unless the edge holds it already.

    Parameters
    ----------
    store : EdgeStore
        The edge store (the model, its version, architecture and quality are kept in it).
    settings : ClientSettings
        Server URL, timeouts, credentials and the edge directory.
    model : str
        ``behaviour`` or ``text``.
    now : datetime
        Evaluation time (consent is checked at it; timezone-aware).
    transport : httpx.BaseTransport or None
        HTTP transport (tests bind one to the app); ``None`` for the network.

    Returns
    -------
    FetchReport
        What was done.

    Raises
    ------
    EdgeConfigError
        If the edge is not registered or its credentials are refused.
    ServerUnavailableError
        If the server cannot be reached.
    ModelFetchError
        If the weights fail the checksum, do not fit the architecture, or the server
        answers unexpectedly.
    ValueError
        If ``model`` is not one of ``FETCHABLE_MODELS``.
    """
    if model not in FETCHABLE_MODELS:
        raise ValueError(f"model must be one of {', '.join(FETCHABLE_MODELS)}")
    credential = load_credentials(settings.credentials_path)
    if credential is None:
        raise EdgeConfigError(
            "the edge is not registered; run 'fedprofile edge sync' with an enrollment token"
        )
    previous = store.global_model_version(model)
    with server_client(settings, transport=transport, token=credential.token) as http:
        url = settings.server_url
        answer = _get(http, f"/models/{model}/latest", server_url=url)
        if answer.status_code == 404:
            return FetchReport(model, "none", previous, previous)
        meta = _checked(answer, "the newest model version").json()
        label = model_version_label(model, int(meta["version"]))
        if previous == label:
            return FetchReport(model, "current", label, previous)
        path = f"/models/{model}/versions/{int(meta['version'])}/weights"
        response = _checked(_get(http, path, server_url=url), "the weights")
    body = response.content
    digest = hashlib.sha256(body).hexdigest()
    if digest != meta.get("sha256") or digest != response.headers.get(CONTENT_SHA256_HEADER):
        raise ModelFetchError(f"the weights of {label} failed their SHA-256 check; not kept")
    if response.headers.get(MODEL_VERSION_HEADER, label) != label:
        raise ModelFetchError(f"the server sent another version than {label}; not kept")
    architecture, held_out, aucs = _evaluate_here(
        store, settings.edge_dir, model=model,
        config=dict(meta.get("architecture", {}).get("config", {})), weights=body, now=now,
        server_round=int(meta.get("server_round", 0)),
    )  # fmt: skip
    store.save_global_model(
        model,
        server_round=int(meta.get("server_round", 0)),
        weights=body,
        version=label,
        architecture=architecture,
    )
    logger.info("kept %s (was %s); %d held-out examples here", label, previous or "none", held_out)
    return FetchReport(model, "fetched", label, previous, held_out, aucs)
