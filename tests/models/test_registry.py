from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from torch import nn

from models import registry
from models.behaviour import BehaviourModel, BehaviourModelConfig
from models.registry import (
    ModelExistsError,
    UnknownModelError,
    create_model,
    get_architecture,
    model_from_weights,
    model_names,
    register_model,
)
from models.text import TextClassifier, TextModelConfig
from models.text_features import VOCABULARY_BASE
from models.weights import get_weights

SMALL_TEXT = TextModelConfig(vocabulary=0, buckets=16, heads={"intent": 4, "emotion": 3})


@pytest.fixture(autouse=True)
def _restore_registry() -> Iterator[None]:
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def _flat(model: nn.Module) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def test_builtin_names_are_listed_sorted() -> None:
    assert model_names() == ("behaviour", "text")


@pytest.mark.parametrize(
    ("name", "model_class", "config_class"),
    [
        ("behaviour", BehaviourModel, BehaviourModelConfig),
        ("text", TextClassifier, TextModelConfig),
    ],
)
def test_builtins_resolve_to_their_classes(
    name: str, model_class: type, config_class: type
) -> None:
    entry = get_architecture(name)

    assert (entry.name, entry.model_class, entry.config_class) == (name, model_class, config_class)
    assert isinstance(create_model(name, seed=0), model_class)


def test_create_model_behaviour_is_deterministic_per_seed() -> None:
    first, second = create_model("behaviour", seed=3), create_model("behaviour", seed=3)

    np.testing.assert_array_equal(_flat(first), _flat(second))
    assert not np.array_equal(_flat(first), _flat(create_model("behaviour", seed=4)))


def test_create_model_text_starts_at_zero_whatever_the_seed() -> None:
    first = create_model("text", seed=3, config=SMALL_TEXT)
    other = create_model("text", seed=4, config=SMALL_TEXT)

    np.testing.assert_array_equal(_flat(first), _flat(other))
    assert not _flat(first).any()


@pytest.mark.parametrize(
    ("name", "config", "expected"),
    [
        ("text", SMALL_TEXT, {"heads.intent.weight": (VOCABULARY_BASE + 16, 4)}),
        (
            "behaviour",
            BehaviourModelConfig(num_features=7, hidden=3),
            {"hidden.weight": (3, 7), "heads.weight": (11, 3)},
        ),
    ],
)
def test_create_model_passes_the_config(
    name: str, config: object, expected: dict[str, tuple[int, ...]]
) -> None:
    model = create_model(name, seed=0, config=config)  # type: ignore[arg-type]

    shapes = {k: v.shape for k, v in get_weights(model).items()}
    assert {k: shapes[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("text", BehaviourModelConfig(), "TextModelConfig"),
        ("behaviour", SMALL_TEXT, "BehaviourModelConfig"),
    ],
)
def test_create_model_refuses_another_architectures_config(
    name: str, config: object, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        create_model(name, seed=0, config=config)  # type: ignore[arg-type]


def test_model_from_weights_rebuilds_the_behaviour_architecture() -> None:
    config = BehaviourModelConfig(num_features=7, hidden=4, sequence=3, embed_dim=2)
    model = create_model("behaviour", seed=1, config=config)

    rebuilt = model_from_weights("behaviour", get_weights(model))

    assert isinstance(rebuilt, BehaviourModel) and rebuilt.config == config
    np.testing.assert_array_equal(_flat(rebuilt), _flat(model))


def test_model_from_weights_forwards_the_text_layout() -> None:
    model = create_model("text", seed=1, config=SMALL_TEXT)
    weights = {k: v + 0.5 for k, v in get_weights(model).items()}

    rebuilt = model_from_weights("text", weights, vocabulary=0, buckets=16)

    assert isinstance(rebuilt, TextClassifier) and rebuilt.config == SMALL_TEXT
    np.testing.assert_array_equal(_flat(rebuilt), np.full(_flat(model).shape, 0.5))
    with pytest.raises(ValueError, match="rows"):
        model_from_weights("text", weights, vocabulary=0, buckets=17)


def test_model_from_weights_refuses_another_architectures_weights() -> None:
    weights = get_weights(create_model("text", seed=0, config=SMALL_TEXT))

    with pytest.raises(ValueError, match="BehaviourModel"):
        model_from_weights("behaviour", weights)


@pytest.mark.parametrize(
    "call",
    [get_architecture, lambda n: create_model(n, seed=0), lambda n: model_from_weights(n, {})],
)
def test_unknown_name_lists_the_known_names(call) -> None:
    with pytest.raises(UnknownModelError, match="known models: behaviour, text") as info:
        call("transformer")

    assert info.value.known == ("behaviour", "text")


@pytest.mark.parametrize("name", ["text", "behaviour"])
def test_register_refuses_to_overwrite_silently(name: str) -> None:
    builtin = get_architecture(name).model_class

    with pytest.raises(ModelExistsError, match="force=True"):
        register_model(name, _Churn, config_class=BehaviourModelConfig)

    assert get_architecture(name).model_class is builtin


class _Churn(BehaviourModel):
    """A stand-in architecture registered by the tests."""


def test_register_new_and_forced_replacement() -> None:
    register_model("churn", _Churn, config_class=BehaviourModelConfig)
    replaced = register_model("text", _Churn, config_class=BehaviourModelConfig, force=True)

    assert model_names() == ("behaviour", "churn", "text")
    assert isinstance(create_model("churn", seed=0), _Churn)
    assert get_architecture("text") is replaced
    assert isinstance(create_model("text", seed=0), _Churn)


def test_register_refuses_empty_name() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        register_model("", _Churn, config_class=BehaviourModelConfig)


def test_importing_the_registry_does_not_import_model_modules() -> None:
    code = (
        "import sys, models.registry as r; "
        "print(any(m in sys.modules for m in "
        "('models.behaviour', 'models.text', 'models.text_features', 'opacus')))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert out.stdout.strip() == "False", out.stderr[-2000:]
