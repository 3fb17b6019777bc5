"""Registry of model architectures chosen by name: "behaviour" and "text".

An architecture is a model class with ``from_seed(seed, config)`` and
``from_weights(weights)`` class methods, plus its config class (a pydantic model).
``register_model`` refuses to overwrite a name silently; ``create_model`` builds a freshly
initialised model and ``model_from_weights`` one carrying received weights; an unknown
name's error lists every known name. The built-in architectures are imported only when
first used, so importing this module does not import torch models (or Opacus).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pydantic import BaseModel

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)


class ModelClass(Protocol):
    """What a registered model class provides (as class methods)."""

    def from_seed(self, seed: int, config: Any = None) -> nn.Module:
        """Build a model whose initial weights depend only on ``seed``."""
        ...

    def from_weights(self, weights: Mapping[str, np.ndarray], **layout: Any) -> nn.Module:
        """Build a model with the architecture and values of ``get_weights`` output.

        ``layout`` carries what the weights cannot tell (the text model's vocabulary and
        bucket split).
        """
        ...


@dataclass(frozen=True, slots=True)
class ModelArchitecture:
    """A registered architecture.

    Parameters
    ----------
    name : str
        Registry key.
    model_class : ModelClass
        The ``nn.Module`` subclass (with ``from_seed`` / ``from_weights``).
    config_class : type[BaseModel]
        Its architecture config; ``create_model`` accepts only instances of it.
    """

    name: str
    model_class: ModelClass
    config_class: type[BaseModel]


class ModelExistsError(ValueError):
    """A model name is already registered (pass ``force=True`` to replace it)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"model {name!r} is already registered; pass force=True to replace it")
        self.name = name


class UnknownModelError(ValueError):
    """No model is registered under a name; the message lists the known names."""

    def __init__(self, name: str, *, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown model {name!r}; known models: {', '.join(known)}")
        self.name = name
        self.known = known


#: Built-in architectures: name -> (module, model class, config class), imported lazily.
_BUILTINS: dict[str, tuple[str, str, str]] = {
    "behaviour": (".behaviour", "BehaviourModel", "BehaviourModelConfig"),
    "text": (".text", "TextClassifier", "TextModelConfig"),
}
_REGISTRY: dict[str, ModelArchitecture | None] = dict.fromkeys(_BUILTINS)


def model_names() -> tuple[str, ...]:
    """Return the registered model names, sorted."""
    return tuple(sorted(_REGISTRY))


def register_model(
    name: str,
    model_class: ModelClass,
    *,
    config_class: type[BaseModel],
    force: bool = False,
) -> ModelArchitecture:
    """Register an architecture under ``name``.

    Parameters
    ----------
    name : str
        Registry key (non-empty).
    model_class : ModelClass
        Model class with ``from_seed(seed, config)`` and ``from_weights(weights)``.
    config_class : type[BaseModel]
        The model's config class.
    force : bool
        Replace an existing registration (built-ins included) instead of refusing.

    Returns
    -------
    ModelArchitecture
        The registered entry.

    Raises
    ------
    ModelExistsError
        If ``name`` is taken and ``force`` is False.
    ValueError
        If ``name`` is empty.
    """
    if not name:
        raise ValueError("name must be a non-empty string")
    if name in _REGISTRY and not force:
        raise ModelExistsError(name)
    if name in _REGISTRY:
        logger.info("replacing model architecture %s", name)
    entry = ModelArchitecture(name=name, model_class=model_class, config_class=config_class)
    _REGISTRY[name] = entry
    return entry


def get_architecture(name: str) -> ModelArchitecture:
    """Return the architecture registered under ``name`` (importing a built-in on first use).

    Raises
    ------
    UnknownModelError
        If nothing is registered under ``name``.
    """
    if name not in _REGISTRY:
        raise UnknownModelError(name, known=model_names())
    entry = _REGISTRY[name]
    if entry is None:
        module_name, model_attr, config_attr = _BUILTINS[name]
        module = importlib.import_module(module_name, __package__)
        entry = ModelArchitecture(
            name=name,
            model_class=getattr(module, model_attr),
            config_class=getattr(module, config_attr),
        )
        _REGISTRY[name] = entry
    return entry


def create_model(name: str, *, seed: int, config: BaseModel | None = None) -> nn.Module:
    """Build a freshly initialised model of a registered architecture.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"text"``.
    seed : int
        Initial weights depend only on it (the global torch RNG is left untouched).
    config : BaseModel or None
        An instance of the architecture's config class; ``None`` for its defaults.

    Returns
    -------
    nn.Module
        The model.

    Raises
    ------
    UnknownModelError
        If nothing is registered under ``name``.
    TypeError
        If ``config`` is not an instance of the architecture's config class.
    """
    entry = get_architecture(name)
    if config is not None and not isinstance(config, entry.config_class):
        raise TypeError(f"config for model {name!r} must be a {entry.config_class.__name__}")
    return entry.model_class.from_seed(seed, config)


def model_from_weights(name: str, weights: Mapping[str, np.ndarray], **layout: Any) -> nn.Module:
    """Build a model of a registered architecture carrying ``weights`` (``get_weights`` output).

    ``layout`` is passed to the class's ``from_weights`` (the text model needs
    ``vocabulary`` and ``buckets``).

    Raises
    ------
    UnknownModelError
        If nothing is registered under ``name``.
    ValueError
        If the weights do not fit the architecture.
    """
    return get_architecture(name).model_class.from_weights(weights, **layout)
