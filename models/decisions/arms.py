"""Experiment arms by a keyed hash of the person: stable, unpredictable without the key.

The same person lands in the same arm on every channel and every day (the hash is over the
person's identifier and the experiment's name), and nobody without the key can steer a
person into an arm. Identifiers are pseudonyms or person ids, never raw identifiers.
"""

from __future__ import annotations

import hashlib
import hmac

from .policy import Arm, Experiment


def arm_position(key: bytes, experiment: str, person: str) -> float:
    """Return the person's position in [0, 1) for an experiment (HMAC-SHA256 under ``key``)."""
    digest = hmac.new(key, f"{experiment}\x1f{person}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_arm(key: bytes, experiment: Experiment, person: str) -> Arm:
    """Return the arm of ``person`` in ``experiment``, in proportion to the arms' weights.

    Raises
    ------
    ValueError
        If the key is shorter than 16 bytes.
    """
    if len(key) < 16:
        raise ValueError("the experiment key must be at least 16 bytes")
    position = arm_position(key, experiment.name, person) * sum(a.weight for a in experiment.arms)
    for arm in experiment.arms:
        if position < arm.weight:
            return arm
        position -= arm.weight
    return experiment.arms[-1]
