"""An edge fetches the registry's newest model, checks it, evaluates it here, scores with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlmodel import Session

from client.learning.loop import train_round
from client.model_fetch import FetchReport, ModelFetchError, fetch_latest_model
from client.scoring import model_quality
from client.store import EdgeStore
from client.text_profile import TEXT_MODEL, text_signals_for
from models import RunConfig, get_weights, weights_to_bytes
from models.learners import TextLearner, text_config
from models.text import DEFAULT_HEADS
from privacy.config import DPConfig
from server.crud.model_registry import publish_version
from server.crud.training import start_run
from server.fl.model_versions import architecture_of
from simulations.labeled import masked_messages

from ..server.edge_harness import Api, edge_settings, make_api, make_edge
from .edge_factories import NOW
from .training_factories import add_labelled_messages, consent

RUN = RunConfig(task="text", text_vocabulary=2000, text_buckets=0)


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(f"sqlite:///{tmp_path / 'server.db'}")


def _trained(epochs: int) -> dict[str, np.ndarray]:
    learner = TextLearner(text_config(RUN))
    texts, labels = masked_messages(1200, seed=5)
    targets = {h: np.array([n.index(x) for x in labels[h]]) for h, n in DEFAULT_HEADS.items()}
    model = learner.new_model(0)
    train_round(model, learner.encode(texts, targets), learner=learner, seed=0,
                dp=DPConfig(enabled=False, batch_size=64, local_epochs=epochs,
                            learning_rate=2.0))  # fmt: skip
    return get_weights(model)


def _publish(api: Api, weights: dict[str, np.ndarray], server_round: int) -> None:
    with Session(api.engine) as session:
        run_id = start_run(session=session, model="text", config={}, num_rounds=1,
                           started_at=NOW)  # fmt: skip
        publish_version(session=session, model="text", run_id=run_id,
                        server_round=server_round, weights=weights_to_bytes(weights),
                        architecture=architecture_of(RUN, weights), epsilon=2.0, delta=1e-5,
                        created_at=NOW)  # fmt: skip


@pytest.fixture()
def desk(tmp_path: Path, api: Api) -> Iterator[EdgeStore]:
    """A registered desk edge with 150 consenting subjects' labelled messages."""
    store, _ = make_edge(tmp_path, api, "desk", [])
    subjects = [f"ps_{i:064x}" for i in range(150)]
    store.add_consents([consent(s) for s in subjects])
    store.close()
    add_labelled_messages(tmp_path / "desk", subjects, per_subject=2)
    with EdgeStore.for_edge_dir(tmp_path / "desk") as opened:
        yield opened


def _fetch(
    tmp_path: Path, api: Api, store: EdgeStore, transport: httpx.BaseTransport | None = None
) -> FetchReport:
    return fetch_latest_model(store=store, settings=edge_settings(tmp_path, "desk"),
                              model="text", now=NOW,
                              transport=transport or api.transport())  # fmt: skip


def test_fetch_keeps_the_newest_version_evaluated_here_and_scoring_names_it(
    tmp_path: Path, api: Api, desk: EdgeStore
) -> None:
    empty = _fetch(tmp_path, api, desk)
    _publish(api, _trained(1), 1)
    _publish(api, _trained(6), 2)

    first = _fetch(tmp_path, api, desk)
    again = _fetch(tmp_path, api, desk)
    signals, scoring = text_signals_for(desk, now=NOW)

    assert empty.status == "none"
    assert (first.status, first.version, first.previous) == ("fetched", "text:v2", None)
    assert first.held_out >= 30 and first.head_aucs["intent"] > 0.8
    assert (again.status, again.version) == ("current", "text:v2")
    assert desk.global_model_version(TEXT_MODEL) == "text:v2"
    quality = model_quality(desk, TEXT_MODEL)
    assert quality is not None and quality.num_examples == first.held_out
    assert scoring.model_version == "text:v2" and scoring.scored > 0
    assert signals


def test_weights_that_fail_their_checksum_are_not_kept(
    tmp_path: Path, api: Api, desk: EdgeStore
) -> None:
    _publish(api, _trained(1), 1)
    inner = api.transport()

    def tamper(request: httpx.Request) -> httpx.Response:
        answer = inner.handle_request(request)
        if request.url.path.endswith("/weights"):
            answer.read()
            return httpx.Response(200, headers=answer.headers, content=answer.content[:-1] + b"x")
        return answer

    with pytest.raises(ModelFetchError, match="SHA-256"):
        _fetch(tmp_path, api, desk, transport=httpx.MockTransport(tamper))

    assert desk.global_model_version(TEXT_MODEL) is None
