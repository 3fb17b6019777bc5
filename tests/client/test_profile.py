from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from client.profile import ProfileScope, build_profiles, check_catalogued, produced_field_names
from client.store import EdgeStore, StoredConsent, StoredEvent, StoredProfileField
from consent import (
    ConsentEvent,
    ConsentStatus,
    FieldCatalogue,
    FieldNotCataloguedError,
    Purpose,
    load_default_catalogue,
)

from .edge_factories import NOW

DAY = 86_400.0
T = NOW.timestamp()
BUYER = "ps_" + "1" * 64
NEWBIE = "ps_" + "2" * 64
CONSENT_ONLY = "ps_" + "3" * 64


@pytest.fixture()
def store(tmp_path: Path) -> EdgeStore:
    with EdgeStore(tmp_path / "edge.sqlite") as s:
        events = [
            StoredEvent(
                f"b{i}",
                BUYER,
                "purchase",
                "web",
                T - (i * 6 + 1) * DAY,
                category="electronics",
                amount=1500.0,
            )
            for i in range(8)
        ]
        events += [
            StoredEvent(f"v{i}", BUYER, "page_view", "app", T - i * DAY, category="home")
            for i in range(10)
        ]
        events += [StoredEvent("n1", NEWBIE, "search", "web", T - DAY)]
        s.add_events(events)
        s.add_consents(
            [
                StoredConsent(
                    "c1",
                    ConsentEvent(
                        subject=CONSENT_ONLY,
                        purpose=Purpose.MARKETING,
                        status=ConsentStatus.GRANTED,
                        occurred_at=NOW - timedelta(days=1),
                        notice_version="v1",
                        channel="web",
                    ),
                )
            ]
        )
        yield s


def test_build_profiles_when_subjects_then_only_catalogued_valid_fields(store: EdgeStore) -> None:
    # Execute
    report = build_profiles(store=store, now=NOW)

    # Assert
    catalogue = load_default_catalogue()
    fields = store.profile_fields()
    assert report.subjects == 2 and report.fields_written == len(fields)
    assert {f.subject for f in fields} == {BUYER, NEWBIE}  # consent-only subjects get no profile
    for f in fields:
        spec = catalogue.get(f.field)
        assert spec.value_problems(f.value) == []
        assert f.computed_at == T


def test_build_profiles_when_buyer_then_tags_explained_and_category(store: EdgeStore) -> None:
    build_profiles(store=store, now=NOW)

    fields = {f.field: f for f in store.profile_fields(subject=BUYER)}
    hpp = fields["tag.high_purchasing_power"]
    assert hpp.value is True and hpp.confidence is not None and hpp.confidence > 0.5
    assert hpp.explanation[0]["feature"] == "monetary_90d"
    assert hpp.explanation[0]["label_zh"] == "近90天消费金额"
    assert fields["feature.preferred_category"].value == "electronics"
    assert fields["feature.frequency_90d"].value == 8
    assert not any(name.startswith("score.") for name in fields)
    assert not hpp.provisional


def test_build_profiles_when_new_subject_then_provisional(store: EdgeStore) -> None:
    report = build_profiles(store=store, now=NOW)

    fields = store.profile_fields(subject=NEWBIE)
    assert report.provisional == 1
    assert fields and all(f.provisional for f in fields)
    assert "feature.preferred_category" not in {
        f.field for f in fields
    }  # searches carry no category


def test_build_profiles_when_scores_given_then_score_fields_for_scored_subjects(
    store: EdgeStore,
) -> None:
    scores = {BUYER: {"purchase_propensity": 0.8123456, "escalation_risk": 0.1}}

    report = build_profiles(store=store, now=NOW, scores=scores)

    fields = {f.field: f.value for f in store.profile_fields(subject=BUYER)}
    assert fields["score.purchase_propensity"] == 0.81  # published at two decimals
    assert fields["score.escalation_risk"] == 0.1
    assert report.scored == 1
    assert not any(f.field.startswith("score.") for f in store.profile_fields(subject=NEWBIE))


def test_build_profiles_when_score_not_finite_then_skipped_and_counted(store: EdgeStore) -> None:
    report = build_profiles(
        store=store, now=NOW, scores={BUYER: {"purchase_propensity": float("nan")}}
    )

    assert report.skipped_invalid == {"score.purchase_propensity": 1}
    assert "score.purchase_propensity" not in {f.field for f in store.profile_fields()}


def test_check_catalogued_when_catalogue_lacks_field_then_refused() -> None:
    full = load_default_catalogue()
    reduced = FieldCatalogue(
        version="t", fields=tuple(f for f in full.fields if f.name != "tag.churn_risk")
    )

    with pytest.raises(FieldNotCataloguedError, match="tag.churn_risk"):
        check_catalogued(reduced)
    assert set(produced_field_names()) <= set(full.by_name)


def test_build_profiles_when_now_naive_then_value_error(store: EdgeStore) -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_profiles(store=store, now=datetime(2026, 1, 1))


def test_build_profiles_when_rebuilt_then_fields_replaced_not_duplicated(store: EdgeStore) -> None:
    build_profiles(store=store, now=NOW)
    first = {(f.subject, f.field) for f in store.profile_fields()}

    report = build_profiles(store=store, now=NOW + timedelta(days=200))

    later = {(f.subject, f.field) for f in store.profile_fields()}
    assert report.fields_written == len(later) == store.count("profiles")
    # the buyer's purchases left the 90-day window: no preferred category any more
    assert first - later == {(BUYER, "feature.preferred_category")}
    assert later <= first
    assert report.tags_true["churn_risk"] >= 1


def test_build_profiles_when_model_gone_then_stale_score_fields_removed(store: EdgeStore) -> None:
    # Prepare: a build with model scores, then one without (the edge lost its model)
    build_profiles(store=store, now=NOW, scores={BUYER: {"purchase_propensity": 0.7}})
    assert "score.purchase_propensity" in {f.field for f in store.profile_fields(subject=BUYER)}

    # Execute
    build_profiles(store=store, now=NOW, scores=None)

    # Assert
    assert not any(f.field.startswith("score.") for f in store.profile_fields())


def test_build_profiles_when_subject_lost_behaviour_then_profile_dropped(
    store: EdgeStore, tmp_path: Path
) -> None:
    # Prepare: an older profile of a subject this edge no longer has behaviour for
    ghost = "ps_" + "9" * 64
    store.put_profile_fields(
        [StoredProfileField(ghost, "feature.recency_days", 3, None, [], False, T - DAY)]
    )

    # Execute
    build_profiles(store=store, now=NOW)

    # Assert
    assert store.profile_fields(subject=ghost) == []
    assert {f.subject for f in store.profile_fields()} == {BUYER, NEWBIE}


def test_subject_fields_publish_coarsened_values() -> None:
    from client.features import compute_features
    from client.profile import subject_fields

    from .edge_factories import NOW

    features = compute_features("ps_" + "c" * 64, [], now=NOW.timestamp())
    values = features.values | {
        "recency_days": 12.7,
        "monetary_90d": 199.99,
        "frequency_90d": 3.0,
        "complaint_rate": 0.3333,
    }
    import dataclasses

    features = dataclasses.replace(features, values=values)

    fields = {
        f.field: f
        for f in subject_fields(
            features, computed_at=NOW.timestamp(), scores={"purchase_propensity": 0.123456}
        )
    }

    assert fields["feature.recency_days"].value == 12
    assert fields["feature.monetary_90d"].value == 199
    assert fields["feature.complaint_rate"].value == 0.33
    assert fields["score.purchase_propensity"].value == 0.12
    for f in fields.values():
        if f.confidence is not None:
            assert round(f.confidence, 2) == f.confidence


# ------------------------------------------------------------------ incremental builds
def _computed_at(store: EdgeStore) -> dict[str, float]:
    return {f.subject: f.computed_at for f in store.profile_fields()}


def test_build_profiles_when_touched_scope_then_only_changed_subjects_refreshed(
    store: EdgeStore,
) -> None:
    # Prepare: a full build, then new behaviour of the newcomer only
    build_profiles(store=store, now=NOW)
    store.add_events([StoredEvent("n2", NEWBIE, "page_view", "web", T + 60, category="books")])
    later = NOW + timedelta(hours=1)

    # Execute
    report = build_profiles(store=store, now=later, subjects=ProfileScope.TOUCHED)
    again = build_profiles(store=store, now=later, subjects=ProfileScope.TOUCHED)

    # Assert
    assert report.scope == "touched" and report.subjects == 1
    assert _computed_at(store) == {BUYER: T, NEWBIE: later.timestamp()}
    assert again.subjects == 0 and again.fields_written == 0
    assert {f.field for f in store.profile_fields(subject=NEWBIE)} >= {"feature.preferred_category"}


def test_build_profiles_when_touched_then_same_fields_as_full_rebuild(store: EdgeStore) -> None:
    build_profiles(store=store, now=NOW)
    store.add_events([StoredEvent("b99", BUYER, "complaint", "desk", T - 5)])
    build_profiles(store=store, now=NOW, subjects=ProfileScope.TOUCHED)
    incremental = store.profile_fields()

    build_profiles(store=store, now=NOW)

    assert store.profile_fields() == incremental


def test_build_profiles_when_subjects_given_then_those_only_and_watermark_kept(
    store: EdgeStore,
) -> None:
    build_profiles(store=store, now=NOW)
    store.add_events([StoredEvent("b98", BUYER, "search", "web", T - 5)])

    report = build_profiles(store=store, now=NOW + timedelta(hours=2), subjects=[NEWBIE])
    touched = build_profiles(
        store=store, now=NOW + timedelta(hours=2), subjects=ProfileScope.TOUCHED
    )

    assert report.scope == "subjects" and report.subjects == 1
    assert touched.subjects == 1  # the buyer's change is still pending after the explicit build
    assert report.to_dict()["scope"] == "subjects"


def test_build_profiles_when_subject_given_as_one_string_then_type_error(store: EdgeStore) -> None:
    with pytest.raises(TypeError, match="collection"):
        build_profiles(store=store, now=NOW, subjects=BUYER)


def test_build_profiles_when_first_touched_build_then_everyone(store: EdgeStore) -> None:
    report = build_profiles(store=store, now=NOW, subjects=ProfileScope.TOUCHED)

    assert report.subjects == 2
