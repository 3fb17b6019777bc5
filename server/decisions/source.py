"""The decision policy and experiment key a server process runs with, checked at startup.

The policy is validated against the catalogue in force before the server accepts a request:
a rule that reads a field its purpose may not use, a pricing rule built on personal
characteristics or an invalid condition stops the start with every problem named.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from consent import (
    FieldCatalogue,
    PurposeRegistry,
    load_default_catalogue,
    load_default_purposes,
)
from models.decisions import DEFAULT_POLICY_PATH, DecisionPolicy, PolicyError

from ..config import ServerSettings
from ..errors import SettingsError

_DEV_KEY_LABEL = b"fedprofile experiment arms (development key)\x00"


@dataclass(frozen=True)
class DecisionSetup:
    """The compiled policy and the key that assigns experiment arms."""

    policy: DecisionPolicy
    arm_key: bytes


def load_policy(
    settings: ServerSettings, catalogue: FieldCatalogue, purposes: PurposeRegistry
) -> DecisionPolicy:
    """Load and check the configured policy (the shipped default when none is set).

    Raises
    ------
    SettingsError
        Listing every refused rule, field or action (``FEDPROFILE_DECISION_POLICY_PATH``).
    """
    path = settings.decision_policy_path or DEFAULT_POLICY_PATH
    try:
        return DecisionPolicy.load(
            path,
            field_purposes={spec.name: [p.value for p in spec.purposes] for spec in catalogue},
            purposes=[spec.name.value for spec in purposes],
        )
    except PolicyError as error:
        raise SettingsError(
            [f"FEDPROFILE_DECISION_POLICY_PATH ({path.name}): {p}" for p in error.problems]
        ) from None


def arm_key(settings: ServerSettings, policy: DecisionPolicy) -> bytes:
    """Return the experiment key: configured, or derived from the database URL in development.

    Raises
    ------
    SettingsError
        If the key is not hex of at least 16 bytes, or production runs an experiment
        without one.
    """
    if settings.experiment_key is not None:
        try:
            key = bytes.fromhex(settings.experiment_key.get_secret_value())
        except ValueError:
            key = b""
        if len(key) < 16:
            raise SettingsError(["FEDPROFILE_EXPERIMENT_KEY must be at least 32 hex digits"])
        return key
    if settings.environment == "production" and policy.policy.experiments:
        raise SettingsError(
            ["FEDPROFILE_EXPERIMENT_KEY is required in production when the policy runs "
             "experiments (generate one with: python -c 'import secrets; "
             "print(secrets.token_hex(32))')"]
        )  # fmt: skip
    return hashlib.sha256(_DEV_KEY_LABEL + settings.database_url.encode()).digest()


def decision_setup(
    settings: ServerSettings, catalogue: FieldCatalogue, purposes: PurposeRegistry
) -> DecisionSetup:
    """Build what the decision routes need (called once per process, in the lifespan)."""
    policy = load_policy(settings, catalogue, purposes)
    return DecisionSetup(policy=policy, arm_key=arm_key(settings, policy))


def setup_from_settings(settings: ServerSettings) -> DecisionSetup:
    """Load the catalogue and purposes the settings name, then the decision setup.

    Raises
    ------
    SettingsError
        If the policy fails its checks (every problem named).
    """
    catalogue = (
        load_default_catalogue()
        if settings.catalogue_path is None
        else FieldCatalogue.load(settings.catalogue_path)
    )
    return decision_setup(settings, catalogue, load_default_purposes())
