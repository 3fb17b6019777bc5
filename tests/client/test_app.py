"""The real ClientApp, called in-process with built Messages (no Ray, no SuperNode)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Message, RecordDict
from opacus.accountants import RDPAccountant

from client.app import (
    ERROR_BAD_MESSAGE,
    ERROR_BUDGET_EXHAUSTED,
    ERROR_NO_EDGE_DATA,
    ERROR_NO_EXAMPLES,
    build_client_app,
)
from client.learning.store_source import behaviour_examples
from client.learning.text import text_split
from client.ledger import read_ledger
from client.scoring import model_quality
from client.store import EdgeStore
from consent import ConsentStatus
from models import EDGE_INFO_KEY, METRICS_KEY, RunConfig, initial_weights
from models.quality import QUALITY_KEYS
from models.sequences import is_holdout
from privacy import compute_epsilon

from .training_factories import (
    NOW,
    add_labelled_messages,
    consent,
    flower_context,
    flower_message,
    make_edge,
    train_content,
)

TRAIN_METRICS = set(QUALITY_KEYS) | {
    "num-examples",
    "examples-trained",
    "train-loss",
    "epsilon",
    "delta",
    "subjects-included",
    "subjects-excluded",
    "budget-exhausted",
}
EVAL_METRICS = {"num-examples", "eval-loss", "eval-auc", "eval-accuracy"}
FAST = {"batch-size": 8, "accountant": "rdp"}


def _weights() -> dict[str, Any]:
    return initial_weights(RunConfig())


def _train_examples(store: EdgeStore) -> int:
    return len(behaviour_examples(store, config=RunConfig(), at=NOW).train)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _send(
    app: Any,
    edge_dir: Path,
    message_type: str,
    *,
    server_round: int = 1,
    weights: dict[str, Any] | None = None,
    **context: Any,
) -> Message:
    weights = weights if weights is not None else _weights()
    content = (
        train_content(weights, server_round=server_round)
        if message_type != "query"
        else RecordDict()
    )
    ctx = flower_context(
        node_config=context.pop("node_config", {"data-path": str(edge_dir)}), **context
    )
    return app(flower_message(content, message_type), ctx)


def _metrics(reply: Message) -> dict[str, float]:
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    return dict(reply.content.metric_records[METRICS_KEY])


def test_train_reply_carries_weights_metrics_and_edge_info(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=24, consenting=range(18), name="web-1", channel="web")
    app = build_client_app(FAST, clock=Clock(NOW))
    sent = _weights()

    reply = _send(app, tmp_path, "train", weights=sent)

    metrics = _metrics(reply)
    assert set(metrics) == TRAIN_METRICS
    assert (metrics["subjects-included"], metrics["subjects-excluded"]) == (18, 6)
    assert metrics["epsilon"] > 0 and metrics["delta"] == 1e-5
    assert metrics["budget-exhausted"] == 0.0
    arrays = reply.content.array_records["arrays"]
    assert list(arrays.keys()) == list(sent)
    assert dict(reply.content.config_records[EDGE_INFO_KEY]) == {"channel": "web", "edge": "web-1"}
    with EdgeStore.for_edge_dir(tmp_path) as store:
        assert store.load_global_model("behaviour")[0] == 1  # type: ignore[index]
        assert len(read_ledger(store, "behaviour").releases) == 1  # type: ignore[union-attr]
        expected_examples = _train_examples(store)
    assert metrics["num-examples"] == metrics["examples-trained"] == expected_examples


def test_train_two_rounds_epsilon_grows_and_equals_opacus_accountant(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=30)
    app = build_client_app(FAST, clock=Clock(NOW))

    first = _metrics(_send(app, tmp_path, "train", server_round=1))["epsilon"]
    second = _metrics(_send(app, tmp_path, "train", server_round=2))["epsilon"]

    with EdgeStore.for_edge_dir(tmp_path) as store:
        ledger = read_ledger(store, "behaviour")
    assert ledger is not None
    opacus = RDPAccountant()
    opacus.history = ledger.history
    assert second > first > 0
    assert second == opacus.get_epsilon(delta=1e-5) == ledger.epsilon()
    assert [r.round for r in ledger.releases] == [1, 2]
    assert all(r.level == "user" and r.sampling == "poisson" for r in ledger.releases)


def test_train_budget_stops_before_exceeding_and_ledger_never_shows_more(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=30)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        n = _train_examples(store)
    q = 1 / -(-n // 8)
    one = compute_epsilon([(1.0, q, round(1 / q))], delta=1e-5, accountant="rdp")
    two = compute_epsilon([(1.0, q, round(1 / q))] * 2, delta=1e-5, accountant="rdp")
    budget = (one + two) / 2
    app = build_client_app(FAST | {"max-epsilon": budget}, clock=Clock(NOW))

    first = _send(app, tmp_path, "train", server_round=1)
    refused = _send(app, tmp_path, "train", server_round=2)
    again = _send(app, tmp_path, "train", server_round=3)

    assert _metrics(first)["budget-exhausted"] == 1.0  # the next round would not fit
    for reply in (refused, again):
        assert reply.has_error() and reply.error.code == ERROR_BUDGET_EXHAUSTED
        assert "budget" in reply.error.reason and "max-epsilon" in reply.error.reason
    with EdgeStore.for_edge_dir(tmp_path) as store:
        ledger = read_ledger(store, "behaviour")
    assert ledger is not None and ledger.exhausted
    assert len(ledger.releases) == 1
    assert ledger.epsilon() <= budget


def test_train_consent_withdrawn_between_rounds_excludes_subject(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=20)
    clock = Clock(NOW)
    app = build_client_app(FAST, clock=clock)
    before = _metrics(_send(app, tmp_path, "train"))
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.add_consents(
            [
                consent(s, status=ConsentStatus.WITHDRAWN, at=NOW + timedelta(hours=1))
                for s in ids[:5]
            ]
        )
    clock.at = NOW + timedelta(hours=2)

    after = _metrics(_send(app, tmp_path, "train", server_round=2))

    assert (before["subjects-included"], before["subjects-excluded"]) == (20, 0)
    assert (after["subjects-included"], after["subjects-excluded"]) == (15, 5)
    assert after["num-examples"] < before["num-examples"]


def test_train_no_consented_examples_is_an_error_reply(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=5, consenting=[])

    reply = _send(build_client_app(FAST, clock=Clock(NOW)), tmp_path, "train")

    assert reply.has_error() and reply.error.code == ERROR_NO_EXAMPLES
    assert "0 subjects consented" in reply.error.reason


def test_train_foreign_weights_are_an_error_reply(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=5)

    reply = _send(build_client_app(FAST), tmp_path, "train", weights={"fc.weight": [[1.0]]})

    assert reply.has_error() and reply.error.code == ERROR_BAD_MESSAGE


def test_data_dir_and_partition_id_pick_the_ith_edge_sorted(tmp_path: Path) -> None:
    make_edge(tmp_path / "b-app", subjects=5, name="app-1", channel="app")
    make_edge(tmp_path / "a-web", subjects=5, name="web-1", channel="web")
    (tmp_path / "c-empty").mkdir()
    app = build_client_app({"data-dir": str(tmp_path)})

    replies = [
        _send(app, tmp_path, "query", node_config={"partition-id": i, "num-partitions": 2})
        for i in (0, 1)
    ]

    assert [dict(r.content.config_records[EDGE_INFO_KEY]) for r in replies] == [
        {"channel": "web", "edge": "web-1"},
        {"channel": "app", "edge": "app-1"},
    ]


@pytest.mark.parametrize(
    ("overrides", "node_config", "reason"),
    [
        ({}, {}, "data-path"),
        ({"data-dir": "DATA"}, {"partition-id": 5}, "partition-id 5"),
        ({"data-dir": "DATA"}, {}, "partition-id"),
        ({}, {"data-path": "MISSING"}, "edge init"),
    ],
)
def test_missing_data_is_an_error_reply_saying_what_to_set(
    tmp_path: Path, overrides: dict[str, str], node_config: dict[str, Any], reason: str
) -> None:
    make_edge(tmp_path / "edge", subjects=3)
    overrides = {k: v.replace("DATA", str(tmp_path)) for k, v in overrides.items()}
    node_config = {
        k: (str(tmp_path / "nowhere") if v == "MISSING" else v) for k, v in node_config.items()
    }

    reply = _send(build_client_app(overrides), tmp_path, "train", node_config=node_config)

    assert reply.has_error() and reply.error.code == ERROR_NO_EDGE_DATA
    assert reason in reply.error.reason
    assert not (tmp_path / "nowhere").exists()  # no store is created by accident


def test_evaluate_saves_global_model_and_reports_metrics(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=40)
    app = build_client_app(FAST, clock=Clock(NOW))

    reply = _send(app, tmp_path, "evaluate", server_round=4)

    metrics = _metrics(reply)
    assert set(metrics) == EVAL_METRICS
    assert metrics["num-examples"] > 0 and 0.0 <= metrics["eval-auc"] <= 1.0
    assert reply.content.array_records == {}
    with EdgeStore.for_edge_dir(tmp_path) as store:
        assert store.load_global_model("behaviour")[0] == 4  # type: ignore[index]
        assert store.ledger_models() == []  # evaluation spends no privacy budget
        quality = model_quality(store)
    assert quality is not None and quality.server_round == 4
    assert quality.head_aucs["purchase"] == metrics["eval-auc"]
    assert set(quality.head_aucs) == {"purchase", "escalation"}
    assert quality.num_examples == metrics["num-examples"]


def test_run_config_from_context_is_used_and_overrides_win(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=20)
    app = build_client_app({"noise-multiplier": 2.0, **FAST}, clock=Clock(NOW))

    _send(app, tmp_path, "train", run_config={"noise-multiplier": 0.5, "local-epochs": 2})

    with EdgeStore.for_edge_dir(tmp_path) as store:
        release = read_ledger(store, "behaviour").releases[0]  # type: ignore[union-attr]
    assert release.noise_multiplier == 2.0
    assert release.steps == 2 * round(1 / release.sample_rate)


def test_bad_run_config_is_an_error_reply_and_bad_overrides_raise(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=3)

    reply = _send(build_client_app(), tmp_path, "query", run_config={"nosie": 1})

    assert reply.has_error() and "unknown run-config keys" in reply.error.reason
    with pytest.raises(ValueError, match="unknown run-config keys"):
        build_client_app({"nosie": 1})


# ------------------------------------------------------------------ DP modes
def _update_norm(reply: Message, sent: dict[str, Any]) -> float:
    arrays = reply.content.array_records["arrays"]
    return float(
        np.sqrt(sum(np.sum((arrays[k].numpy() - np.asarray(v)) ** 2) for k, v in sent.items()))
    )


def _send_clipped(
    app: Any, edge_dir: Path, *, clipping_norm: float | None, server_round: int = 1, **context: Any
) -> tuple[Message, dict[str, Any]]:
    """A train message as Flower's client-side fixed-clipping wrapper sends it."""
    sent = _weights()
    content = train_content(sent, server_round=server_round)
    if clipping_norm is not None:
        content.config_records["config"]["clipping_norm"] = clipping_norm
    ctx = flower_context(node_config={"data-path": str(edge_dir)}, **context)
    return app(flower_message(content, "train"), ctx), sent


def _ledger(edge_dir: Path) -> Any:
    with EdgeStore.for_edge_dir(edge_dir) as store:
        return read_ledger(store, "behaviour")


def test_train_central_mode_clips_update_and_charges_the_central_release(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=24)
    app = build_client_app(
        FAST | {"dp-mode": "central", "central-noise-multiplier": 2.0}, clock=Clock(NOW)
    )

    reply, sent = _send_clipped(app, tmp_path, clipping_norm=0.05)

    metrics = _metrics(reply)
    assert metrics["num-examples"] == 1  # equal FedAvg weights for the accounted wrapper
    assert metrics["examples-trained"] > 1
    assert _update_norm(reply, sent) <= 0.05 + 1e-6
    ledger = _ledger(tmp_path)
    assert [r.entry for r in ledger.releases] == [(2.0, 1.0, 1)]
    assert metrics["epsilon"] == ledger.epsilon()
    assert ledger.epsilon() == pytest.approx(
        compute_epsilon([(2.0, 1.0, 1)], delta=1e-5, accountant="rdp")
    )


def test_train_central_mode_without_server_clipping_norm_is_refused_untrained(
    tmp_path: Path,
) -> None:
    make_edge(tmp_path, subjects=12)
    app = build_client_app(FAST | {"dp-mode": "central"}, clock=Clock(NOW))

    reply, _ = _send_clipped(app, tmp_path, clipping_norm=None)

    assert reply.has_error() and "clipping_norm" in reply.error.reason
    assert _ledger(tmp_path) is None  # nothing trained, nothing charged


@pytest.mark.parametrize(
    ("mode", "clipped", "weight_is_constant", "ledger_sigma"),
    [
        ("local", False, False, 1.0),
        ("both", True, True, 1.0),
        ("off", False, False, 0.0),
    ],
)
def test_train_dp_modes_clip_weight_and_charge_as_documented(
    tmp_path: Path, mode: str, clipped: bool, weight_is_constant: bool, ledger_sigma: float
) -> None:
    make_edge(tmp_path, subjects=24)
    app = build_client_app(FAST | {"dp-mode": mode}, clock=Clock(NOW))

    reply, sent = _send_clipped(app, tmp_path, clipping_norm=1e-3)

    metrics = _metrics(reply)
    assert (_update_norm(reply, sent) <= 1e-3 + 1e-6) is clipped
    assert (metrics["num-examples"] == 1) is weight_is_constant
    release = _ledger(tmp_path).releases[0]
    assert release.noise_multiplier == ledger_sigma and release.sample_rate < 1.0
    assert (metrics["epsilon"] == float("inf")) is (mode == "off")


def test_train_off_mode_with_a_budget_is_refused(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=12)
    app = build_client_app(FAST | {"dp-mode": "off", "max-epsilon": 50.0}, clock=Clock(NOW))

    reply = _send(app, tmp_path, "train")

    assert reply.has_error() and reply.error.code == ERROR_BUDGET_EXHAUSTED
    assert _ledger(tmp_path).releases == ()


def test_train_central_mode_budget_refuses_the_release_that_would_exceed(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=12)
    two = compute_epsilon([(3.0, 1.0, 1)] * 2, delta=1e-5, accountant="rdp")
    three = compute_epsilon([(3.0, 1.0, 1)] * 3, delta=1e-5, accountant="rdp")
    overrides = {"dp-mode": "central", "central-noise-multiplier": 3.0}
    app = build_client_app(FAST | overrides | {"max-epsilon": (two + three) / 2}, clock=Clock(NOW))

    replies = [
        _send_clipped(app, tmp_path, clipping_norm=1.0, server_round=r)[0] for r in (1, 2, 3)
    ]

    assert [r.has_error() for r in replies] == [False, False, True]
    assert replies[2].error.code == ERROR_BUDGET_EXHAUSTED
    assert _metrics(replies[1])["budget-exhausted"] == 1.0
    ledger = _ledger(tmp_path)
    assert len(ledger.releases) == 2 and ledger.exhausted
    assert ledger.epsilon() == pytest.approx(two) and ledger.epsilon() <= (two + three) / 2


def test_evaluate_in_central_mode_is_not_clipped_or_refused(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=30)
    app = build_client_app(FAST | {"dp-mode": "central"}, clock=Clock(NOW))

    reply = _send(app, tmp_path, "evaluate")

    assert set(_metrics(reply)) == EVAL_METRICS


def test_bad_dp_mode_is_an_error_reply(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=3)

    reply, _ = _send_clipped(
        build_client_app(), tmp_path, clipping_norm=1.0, run_config={"dp-mode": "centre"}
    )

    assert reply.has_error() and "dp_mode" in reply.error.reason


TEXT_RUN = FAST | {"task": "text", "text-vocabulary": 500, "batch-size": 16}


def _text_weights() -> dict[str, Any]:
    return initial_weights(RunConfig(task="text", text_vocabulary=500))


def test_text_task_without_labelled_messages_is_an_error_reply_saying_why(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=5)
    add_labelled_messages(tmp_path, ids, labelled_share=0.0)

    reply = _send(build_client_app(TEXT_RUN), tmp_path, "train", weights=_text_weights())

    assert reply.has_error() and reply.error.code == ERROR_NO_EXAMPLES
    assert "agent labels" in reply.error.reason


def test_text_task_trains_on_labelled_messages_one_per_consented_subject(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=30, consenting=range(24), name="desk-1", channel="desk")
    add_labelled_messages(tmp_path, ids, per_subject=3)
    app = build_client_app(TEXT_RUN, clock=Clock(NOW))
    holdout = {s for s in ids[:24] if is_holdout(s, fraction=RunConfig().holdout_fraction)}

    reply = _send(app, tmp_path, "train", weights=_text_weights())

    metrics = _metrics(reply)
    assert (metrics["subjects-included"], metrics["subjects-excluded"]) == (24, 6)
    assert metrics["examples-trained"] == 24 - len(holdout)  # user level: one message each
    assert metrics["epsilon"] > 0
    with EdgeStore.for_edge_dir(tmp_path) as store:
        ledger = read_ledger(store, "text")
        assert ledger is not None and len(ledger.releases) == 1
        assert ledger.releases[0].level == "user"
        assert store.ledger_models() == ["text"]


def test_text_round_picks_a_different_message_per_round(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=40)
    add_labelled_messages(tmp_path, ids, per_subject=4)
    config = RunConfig(task="text", holdout_fraction=0.0)

    with EdgeStore.for_edge_dir(tmp_path) as store:
        first = text_split(store, config=config, at=NOW).train
        later = text_split(store, config=config, at=NOW + timedelta(hours=1)).train

    assert [m.subject for m in first] == [m.subject for m in later] == sorted(ids)
    assert sum(a.message_id != b.message_id for a, b in zip(first, later, strict=True)) > 10


def test_text_evaluate_keeps_the_model_and_its_registry_version(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=40)
    add_labelled_messages(tmp_path, ids, per_subject=2)
    app = build_client_app(TEXT_RUN, clock=Clock(NOW))
    content = train_content(_text_weights(), server_round=2, model_version="text:v7")
    ctx = flower_context(node_config={"data-path": str(tmp_path)})

    reply = app(flower_message(content, "evaluate"), ctx)

    metrics = _metrics(reply)
    assert metrics["num-examples"] > 0 and 0.0 <= metrics["eval-accuracy"] <= 1.0
    with EdgeStore.for_edge_dir(tmp_path) as store:
        assert store.load_global_model("text")[0] == 2  # type: ignore[index]
        assert store.global_model_version("text") == "text:v7"
        assert store.global_model_version("behaviour") is None


def test_text_budget_stops_the_round_that_would_exceed(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=30)
    add_labelled_messages(tmp_path, ids)
    app = build_client_app(TEXT_RUN | {"max-epsilon": 3.0, "noise-multiplier": 1.0})

    replies = [
        _send(app, tmp_path, "train", server_round=r, weights=_text_weights()) for r in (1, 2, 3)
    ]

    refused = [r for r in replies if r.has_error()]
    assert refused and refused[0].error.code == ERROR_BUDGET_EXHAUSTED
    with EdgeStore.for_edge_dir(tmp_path) as store:
        ledger = read_ledger(store, "text")
    assert ledger is not None and ledger.epsilon() <= 3.0


def test_fixed_cutoff_uses_only_history_before_it(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=30)
    early = (NOW - timedelta(days=45)).isoformat()
    app = build_client_app(FAST | {"cutoff": early}, clock=Clock(NOW))

    metrics = _metrics(_send(app, tmp_path, "train"))

    config = RunConfig(cutoff=NOW - timedelta(days=45))
    with EdgeStore.for_edge_dir(tmp_path) as store:
        split = behaviour_examples(store, config=config, at=NOW)
        default = _train_examples(store)
    assert split.cutoff == NOW - timedelta(days=45)
    assert metrics["examples-trained"] == len(split.train) < default + 1
