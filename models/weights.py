"""Model weights as named numpy arrays: exchange, update and (pickle-free) serialisation.

Weights are a model's *named parameters* in registration order. Opacus's DP recurrent
layers register every GRU weight twice in ``state_dict()``; ``named_parameters()`` yields
each tensor once, under the ``torch.nn.GRU`` name, so that is what crosses the wire.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)


def get_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """Return copies of a model's parameters, by name, in a stable order.

    Parameters
    ----------
    model : nn.Module
        Any torch module (not an Opacus ``GradSampleModule`` wrapper: pass its inner module).

    Returns
    -------
    dict[str, np.ndarray]
        Parameter name to float array, in registration order, each tensor once.
    """
    return {name: p.detach().cpu().numpy().copy() for name, p in model.named_parameters()}


def set_weights(model: nn.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Copy named arrays into a model's parameters in place.

    Parameters
    ----------
    model : nn.Module
        Model to update.
    weights : Mapping[str, np.ndarray]
        Exactly the model's parameter names with matching shapes.

    Raises
    ------
    ValueError
        If names are missing or unexpected, or a shape differs (nothing is changed then).
    """
    params = dict(model.named_parameters())
    missing = sorted(set(params) - set(weights))
    unexpected = sorted(set(weights) - set(params))
    if missing or unexpected:
        raise ValueError(
            f"weights do not match the model: missing {missing}, unexpected {unexpected}"
        )
    bad = [n for n, p in params.items() if tuple(np.shape(weights[n])) != tuple(p.shape)]
    if bad:
        raise ValueError(f"weights have the wrong shape for {bad}")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(torch.as_tensor(np.asarray(weights[name]), dtype=param.dtype))


def weights_to_bytes(weights: Mapping[str, np.ndarray]) -> bytes:
    """Serialise named arrays with ``np.savez`` (no pickling; order is kept).

    Returns
    -------
    bytes
        An ``.npz`` archive.
    """
    buffer = io.BytesIO()
    arrays = {name: np.asarray(value) for name, value in weights.items()}
    if any(a.dtype == object for a in arrays.values()):
        raise ValueError("object arrays cannot be serialised without pickle")
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def weights_from_bytes(data: bytes) -> dict[str, np.ndarray]:
    """Load named arrays written by ``weights_to_bytes`` (pickle refused).

    Returns
    -------
    dict[str, np.ndarray]
        Name to array, in the stored order.

    Raises
    ------
    ValueError
        If ``data`` is not an ``.npz`` archive of plain arrays.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError("not a weights archive of plain arrays") from exc
