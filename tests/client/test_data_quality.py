"""Per-round data quality on a real edge: aggregates leave with the update, nothing else.

The edge's train reply carries the ``quality-*`` aggregates of ``models.quality``; the
reference window stays in the edge store; a scan of everything the reply holds finds no
pseudonym and no customer's value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Message

from client import build_client_app
from client.learning.store_source import QUALITY_META_PREFIX
from client.store import EdgeStore
from models import RunConfig, initial_weights
from models.quality import NOT_MEASURED, Q_PSI_MAX, Q_REPORTED, QUALITY_KEYS

from .training_factories import NOW, flower_context, flower_message, make_edge, train_content

FAST = {"batch-size": 16, "accountant": "rdp"}


def _train(app: Any, edge_dir: Path, server_round: int, state: Any = None) -> tuple[Message, Any]:
    ctx = flower_context(node_config={"data-path": str(edge_dir)})
    if state is not None:
        ctx.state = state
    content = train_content(initial_weights(RunConfig()), server_round=server_round)
    return app(flower_message(content, "train"), ctx), ctx.state


def _strings(value: Any) -> list[str]:
    """Every string and number a record holds, as text."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings(v)]]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_quality_aggregates_leave_the_edge_and_the_reference_stays(tmp_path: Path) -> None:
    pseudonyms = make_edge(tmp_path, subjects=120, name="app-1", channel="app")
    app = build_client_app(FAST, clock=lambda: NOW)

    first, state = _train(app, tmp_path, 1)
    second, _ = _train(app, tmp_path, 2, state)

    for reply in (first, second):
        assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    one = dict(first.content.metric_records["metrics"])
    two = dict(second.content.metric_records["metrics"])
    assert {k for k in one if k.startswith("quality-")} == set(QUALITY_KEYS)
    assert one[Q_REPORTED] == 1.0
    assert one[Q_PSI_MAX] == NOT_MEASURED, "no reference before the first round"
    assert 0.0 <= two[Q_PSI_MAX] < 0.1, "the same data against its own reference"
    with EdgeStore.for_edge_dir(tmp_path) as store:
        saved = store.get_meta(f"{QUALITY_META_PREFIX}behaviour")
    assert saved is not None and "cuts" in json.loads(saved)
    # Scan everything the reply holds besides the weights: no pseudonym, no reference.
    records = {
        **{k: dict(v) for k, v in second.content.metric_records.items()},
        **{k: dict(v) for k, v in second.content.config_records.items()},
    }
    text = " ".join(_strings(records))
    assert not any(p in text for p in pseudonyms)
    assert "cuts" not in text and "shares" not in text
    values = [float(v) for v in two.values()]
    assert all(np.isfinite(values))
