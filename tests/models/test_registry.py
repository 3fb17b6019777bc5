from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from torch import nn

from models import registry
from models.registry import (
    ModelExistsError,
    UnknownModelError,
    create_model,
    get_architecture,
    model_from_weights,
    model_names,
    register_model,
)
from models.tabular import TabularMLP, TabularModelConfig
from models.text import TextModelConfig


@pytest.fixture(autouse=True)
def _restore_registry() -> Iterator[None]:
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def _flat(model: nn.Module) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def test_builtin_names_are_listed_sorted() -> None:
    assert model_names() == ("behaviour", "tabular", "text")


@pytest.mark.parametrize(
    ("name", "class_name"),
    [("behaviour", "BehaviourGRU"), ("text", "TextClassifier"), ("tabular", "TabularMLP")],
)
def test_create_model_builds_each_builtin_deterministically(name: str, class_name: str) -> None:
    first, second = create_model(name, seed=3), create_model(name, seed=3)

    assert type(first).__name__ == class_name
    np.testing.assert_array_equal(_flat(first), _flat(second))
    assert not np.array_equal(_flat(first), _flat(create_model(name, seed=4)))


def test_create_model_passes_the_config() -> None:
    model = create_model("text", seed=0, config=TextModelConfig(num_buckets=32, embed_dim=2))

    assert model.embedding.weight.shape == (32, 2)


def test_create_model_refuses_another_architectures_config() -> None:
    with pytest.raises(TypeError, match="TextModelConfig"):
        create_model("text", seed=0, config=TabularModelConfig())


def test_model_from_weights_rebuilds_the_architecture() -> None:
    model = create_model("tabular", seed=1, config=TabularModelConfig(hidden_sizes=(4,)))
    weights = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}

    rebuilt = model_from_weights("tabular", weights)

    assert isinstance(rebuilt, TabularMLP) and rebuilt.config.hidden_sizes == (4,)
    np.testing.assert_array_equal(_flat(rebuilt), _flat(model))


@pytest.mark.parametrize("call", [get_architecture, lambda n: create_model(n, seed=0)])
def test_unknown_name_lists_the_known_names(call) -> None:
    with pytest.raises(UnknownModelError, match="known models: behaviour, tabular, text") as info:
        call("transformer")

    assert info.value.known == ("behaviour", "tabular", "text")


@pytest.mark.parametrize("name", ["text", "behaviour"])
def test_register_refuses_to_overwrite_silently(name: str) -> None:
    with pytest.raises(ModelExistsError, match="force=True"):
        register_model(name, TabularMLP, config_class=TabularModelConfig)

    assert get_architecture(name).model_class is not TabularMLP


def test_register_new_and_forced_replacement() -> None:
    register_model("churn", TabularMLP, config_class=TabularModelConfig)
    replaced = register_model("text", TabularMLP, config_class=TabularModelConfig, force=True)

    assert "churn" in model_names()
    assert isinstance(create_model("churn", seed=0), TabularMLP)
    assert get_architecture("text") is replaced


def test_register_refuses_empty_name() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        register_model("", TabularMLP, config_class=TabularModelConfig)


def test_importing_the_registry_does_not_import_model_modules() -> None:
    code = (
        "import sys, models.registry as r; "
        "print(any(m in sys.modules for m in ('models.behaviour', 'models.text', 'opacus')))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert out.stdout.strip() == "False", out.stderr[-2000:]
