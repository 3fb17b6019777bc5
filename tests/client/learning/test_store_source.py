"""Behaviour examples an edge builds from its store: consent, the time split, the seam."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from client.errors import LearningDataError
from client.learning.store_source import (
    StoreSource,
    behaviour_cutoff,
    behaviour_data,
    behaviour_examples,
    consented_subjects,
    resolve_edge_dir,
)
from client.store import EdgeStore
from consent import ConsentStatus, Purpose
from models import RunConfig

from ..training_factories import NOW, consent, flower_context, make_edge

CONFIG = RunConfig()


def test_consented_subjects_only_model_training_grants_count(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=8, consenting=[0, 1, 2], other_purpose=[3, 4])

    with EdgeStore.for_edge_dir(tmp_path) as store:
        included, excluded = consented_subjects(store, at=NOW)

    assert sorted(included) == sorted(ids[:3])
    assert excluded == 5


def test_consented_subjects_withdrawal_excludes_from_that_moment(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=3)
    withdrawn_at = NOW - timedelta(days=1)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.add_consents([consent(ids[0], status=ConsentStatus.WITHDRAWN, at=withdrawn_at)])

        before, _ = consented_subjects(store, at=withdrawn_at - timedelta(seconds=1))
        after, excluded = consented_subjects(store, at=NOW)

    assert ids[0] in before
    assert ids[0] not in after and excluded == 1


def test_behaviour_examples_use_only_consented_subjects(tmp_path: Path) -> None:
    mixed, everyone = tmp_path / "mixed", tmp_path / "everyone"
    ids = make_edge(mixed, subjects=30, consenting=range(0, 30, 2), seed=4)
    make_edge(everyone, subjects=30, seed=4)  # same subjects and events, all consenting
    consenting = set(ids[0::2])
    with EdgeStore.for_edge_dir(mixed) as store:
        data = behaviour_examples(store, config=CONFIG, at=NOW)
    with EdgeStore.for_edge_dir(everyone) as store:
        full = behaviour_examples(store, config=CONFIG, at=NOW)

    assert (data.subjects_included, data.subjects_excluded) == (15, 15)
    assert {e.subject for e in data.train + data.holdout} <= consenting
    assert data.train == [e for e in full.train if e.subject in consenting]
    assert data.holdout == [e for e in full.holdout if e.subject in consenting]


def test_assumed_consent_uses_every_subject_and_is_never_the_default(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=12, consenting=[])
    with EdgeStore.for_edge_dir(tmp_path) as store:
        default = behaviour_examples(store, config=CONFIG, at=NOW)
        assumed = behaviour_examples(store, config=CONFIG, at=NOW, assume_consent=True)

    assert default.train == [] and default.subjects_excluded == 12
    assert len(assumed.train) + len(assumed.holdout) == 12 and assumed.subjects_excluded == 0


def test_default_cutoff_is_the_round_time_minus_the_window() -> None:
    assert behaviour_cutoff(RunConfig(label_window_days=7), at=NOW) == NOW - timedelta(days=7)
    fixed = NOW - timedelta(days=40)
    assert behaviour_cutoff(RunConfig(cutoff=fixed), at=NOW) == fixed


def test_examples_never_see_events_after_the_round_time(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=20)
    early = NOW - timedelta(days=20)
    config = RunConfig(cutoff=early - timedelta(days=14))
    with EdgeStore.for_edge_dir(tmp_path) as store:
        at_early = behaviour_examples(store, config=config, at=early)
        at_now = behaviour_examples(store, config=config, at=NOW)

    # Same cutoff: features agree; labels can only see the window up to the round time.
    early_by = {e.subject: e for e in at_early.train}
    for example in at_now.train:
        assert early_by[example.subject].features == example.features


def test_holdout_share_is_by_pseudonym_and_stable(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=200)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        first = behaviour_examples(store, config=RunConfig(holdout_fraction=0.3), at=NOW)
        again = behaviour_examples(store, config=RunConfig(holdout_fraction=0.3), at=NOW)

    assert [e.subject for e in first.holdout] == [e.subject for e in again.holdout]
    assert 0.2 < len(first.holdout) / 200 < 0.4


def test_behaviour_data_without_consent_raises_with_counts(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=5, consenting=[], other_purpose=range(5))

    with (
        EdgeStore.for_edge_dir(tmp_path) as store,
        pytest.raises(LearningDataError, match="0 subjects consented.*5 did not"),
    ):
        behaviour_data(store, config=CONFIG, at=NOW)
    assert Purpose.MODEL_TRAINING.value == "model_training"


def test_behaviour_data_encodes_for_the_configured_learner(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=30)
    config = RunConfig(behaviour_hidden=4)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        data = behaviour_data(store, config=config, at=NOW)

    assert data.learner.name == "behaviour" and data.level == "user"
    assert data.train.tensors[0].shape[1] == 44
    assert len(data.train) + len(data.holdout) == 30


def test_resolve_edge_dir_prefers_data_path(tmp_path: Path) -> None:
    make_edge(tmp_path / "a", subjects=2)
    make_edge(tmp_path / "b", subjects=2)
    config = RunConfig(data_dir=str(tmp_path))

    assert resolve_edge_dir({"data-path": str(tmp_path / "b")}, config) == tmp_path / "b"
    assert resolve_edge_dir({"partition-id": 0}, config) == tmp_path / "a"


def test_store_source_yields_the_edge_name_and_channel(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=2, name="desk-1", channel="desk")

    context = flower_context(node_config={"data-path": str(tmp_path)})
    with StoreSource().open(context, CONFIG) as session:
        assert (session.edge, session.channel) == ("desk-1", "desk")
        assert session.noise_generator(3) is None  # deployed edges: OS-seeded noise only
