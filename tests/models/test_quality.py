"""Data-quality aggregates (edge) and the policy that judges them (server)."""

from __future__ import annotations

import numpy as np
import pytest

from models.quality import (
    MIN_QUALITY_EXAMPLES,
    NOT_MEASURED,
    Q_CONSTANT,
    Q_DUPLICATES,
    Q_LABEL_SHIFT,
    Q_PSI_MAX,
    Q_REPORTED,
    Q_VOLUME,
    QUALITY_KEYS,
    QualityReference,
    assess,
    build_reference,
    measure,
    population_stability_index,
)


def _data(
    n: int, seed: int, *, shift: float = 0.0, rate: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = np.column_stack(
        [rng.normal(shift, 1.0, n), rng.exponential(2.0, n), rng.integers(0, 5, n)]
    )
    labels = (rng.random(n) < rate).astype(np.int64)
    return features, labels


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    even = np.full(10, 0.1)
    assert population_stability_index(even, even) == pytest.approx(0.0)
    moved = np.asarray([0.05] * 5 + [0.15] * 5)
    assert (
        0.0
        < population_stability_index(even, moved)
        < population_stability_index(even, np.asarray([0.01] * 9 + [0.91]))
    )


def test_a_new_sample_of_the_same_population_raises_no_flag() -> None:
    reference = build_reference(*_data(2000, 1))
    assert reference is not None
    measured = measure(*_data(1800, 2), reference)
    assert set(measured) == set(QUALITY_KEYS)
    assert measured[Q_PSI_MAX] < 0.1 and measured[Q_LABEL_SHIFT] < 0.05
    assert assess(measured) == []


def test_a_shifted_population_is_flagged_for_exclusion() -> None:
    reference = build_reference(*_data(2000, 1))
    measured = measure(*_data(2000, 3, shift=1.5), reference)
    flags = assess(measured)
    assert measured[Q_PSI_MAX] > 0.25
    assert [(f.kind, f.action) for f in flags] == [("drift", "exclude")]


def test_a_schema_break_and_a_label_shift_are_named() -> None:
    reference = build_reference(*_data(2000, 1))
    features, labels = _data(2000, 4, rate=0.8)
    features[:, 0] = 0.0  # a renamed field arrives as its default
    features[:, 1] = 0.0
    kinds = {f.kind: f.action for f in assess(measure(features, labels, reference))}
    assert kinds["schema-break"] == "exclude"
    assert kinds["label-shift"] == "exclude"


def test_volume_drop_and_duplicates_down_weight() -> None:
    reference = build_reference(*_data(2000, 1))
    features, labels = _data(300, 5)
    features = np.repeat(features[:60], 5, axis=0)
    labels = np.repeat(labels[:60], 5)
    measured = measure(features, labels, reference)
    assert measured[Q_VOLUME] == pytest.approx(300 / 2000)
    assert measured[Q_DUPLICATES] == pytest.approx(0.8)
    actions = {f.kind: f.action for f in assess(measured)}
    assert actions["volume-drop"] == "down-weight"
    assert actions["duplicates"] == "down-weight"


def test_too_few_examples_report_nothing_but_the_fact() -> None:
    features, labels = _data(MIN_QUALITY_EXAMPLES - 1, 6)
    assert build_reference(features, labels) is None
    measured = measure(features, labels, build_reference(*_data(500, 1)))
    assert measured[Q_REPORTED] == 0.0
    assert {v for k, v in measured.items() if k != Q_REPORTED} == {NOT_MEASURED}
    assert assess(measured) == []


def test_the_report_holds_only_aggregates_never_a_customer_value() -> None:
    """Every key is a rate, ratio or index; none equals any single example's feature."""
    features, labels = _data(400, 7)
    features[0, 1] = 12345.678  # one customer's distinctive value
    measured = measure(features, labels, build_reference(*_data(400, 8)))
    assert set(measured) == set(QUALITY_KEYS)
    values = np.asarray(list(measured.values()))
    assert not np.isin(features[:, :2], values).any(), "no continuous feature value leaves"
    assert max(values) < 100, "no raw amount leaves"


def test_the_reference_round_trips_through_json() -> None:
    reference = build_reference(*_data(500, 9))
    assert reference is not None
    assert QualityReference.from_json(reference.to_json()) == reference
    assert Q_CONSTANT in measure(*_data(500, 10), reference)
