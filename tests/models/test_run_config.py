from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from models import RunConfig, parse_run_config
from models.run_config import known_keys

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _pyproject_run_config() -> dict[str, Any]:
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return dict(data["tool"]["flwr"]["app"]["config"])


def test_run_config_fields_match_pyproject_keys_and_defaults() -> None:
    pyproject = _pyproject_run_config()

    assert sorted(known_keys()) == sorted(pyproject)
    assert parse_run_config(pyproject) == RunConfig()


def test_parse_run_config_hyphenated_and_snake_keys_are_accepted() -> None:
    config = parse_run_config({"noise-multiplier": 0.7, "local_epochs": 2})

    assert (config.noise_multiplier, config.local_epochs) == (0.7, 2)


def test_parse_run_config_overrides_win_over_run_config() -> None:
    config = parse_run_config({"seed": 1, "min-nodes": 3}, {"seed": 9})

    assert (config.seed, config.min_nodes) == (9, 3)


def test_parse_run_config_unknown_key_lists_known_keys() -> None:
    with pytest.raises(ValueError, match="unknown run-config keys.*noise-multiplier"):
        parse_run_config({"noise-multiplyer": 1.0})


@pytest.mark.parametrize(
    "bad",
    [
        {"accountant": "gdp"},
        {"noise-multiplier": -1.0},
        {"target-delta": 1.0},
        {"fraction-train": 1.5},
        {"batch-size": 0},
    ],
)
def test_parse_run_config_invalid_values_raise(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parse_run_config(bad)


def test_run_config_is_frozen() -> None:
    config = RunConfig()

    with pytest.raises(ValueError):
        config.seed = 3  # type: ignore[misc]


def test_secure_aggregation_resolves_robust_to_fedavg() -> None:
    config = parse_run_config({"secure-aggregation": True, "min-nodes": 3})

    assert config.aggregation_rule == "fedavg"
    assert parse_run_config({"min-nodes": 3}).aggregation_rule == "trimmed-mean"
    assert (config.secagg_shares, config.secagg_threshold) == (5, 3)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"aggregation": "median"}, "aggregation 'median' cannot run with secure-aggregation"),
        ({"aggregation": "bulyan", "min-nodes": 7}, "use aggregation 'robust' or 'fedavg'"),
        ({"secagg-shares": 3, "secagg-threshold": 3}, "below secagg-shares"),
        ({"secagg-shares": 7, "secagg-threshold": 3}, "more than half"),
        ({"secagg-threshold": 4, "min-nodes": 3}, "raise min-nodes"),
        ({"secagg-shares": 2, "secagg-threshold": 2}, "secagg_shares"),
    ],
)
def test_secure_aggregation_inconsistent_settings_refused(
    values: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        parse_run_config({"secure-aggregation": True, "min-nodes": 3, **values})


def test_secagg_settings_unchecked_while_secure_aggregation_is_off() -> None:
    config = parse_run_config({"aggregation": "median", "secagg-threshold": 9})

    assert not config.secure_aggregation and config.aggregation_rule == "median"
