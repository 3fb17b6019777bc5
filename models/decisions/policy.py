"""Decision policies as data: rules, the human fallback and experiments, validated when loaded.

A policy is YAML (``models/decisions/data/default_policy.yaml`` ships one). Loading checks
every rule before any is used and refuses the policy with every problem named:

- the condition is CEL (no ``eval``; CEL has no loops or recursion, so its cost is bounded by
  the expression's size, which is capped) and it compiles;
- **static consent check**: every profile field the condition reads is catalogued for the
  rule's purpose (the catalogue is the caller's: this room imports no other);
- the action is one the purpose may take; a price or transaction-terms action that depends
  on the person (any field or signal) is refused (PIPL Art. 24);
- experiments' arms name existing rules and their weights are positive.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .actions import Action, ActionKind, Token

#: A policy holds at most this many rules, and a condition at most this many characters.
MAX_RULES = 500
MAX_CONDITION_CHARS = 2000

DEFAULT_POLICY_PATH = Path(__file__).with_name("data") / "default_policy.yaml"

Reason = Annotated[str, Field(min_length=1, max_length=200)]


class PolicyError(ValueError):
    """A policy was refused; ``problems`` lists each reason (rule and field named)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("decision policy refused: " + "; ".join(problems))


class Rule(BaseModel):
    """One rule: when ``when`` holds for a person under ``purpose``, take ``action``.

    Parameters
    ----------
    id : str
        A stable identifier (lower-case token), unique in the policy.
    purpose : str
        The purpose the rule serves; it may read only fields catalogued for it.
    when : str
        A CEL condition over field, signal and contact variables (:mod:`.names`).
    action : Action
        What to do when the rule decides.
    priority : int
        Higher decides first when several rules of a purpose hold.
    reason_zh, reason_en : str
        The reason an agent or the person reads.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Token
    purpose: Token
    when: Annotated[str, Field(min_length=1, max_length=MAX_CONDITION_CHARS)]
    action: Action
    priority: int = Field(default=0, ge=0, le=1000)
    reason_zh: Reason
    reason_en: Reason


class Fallback(BaseModel):
    """When a model-driven decision goes to a human instead.

    ``min_confidence`` is the threshold; ``error_rate`` and ``fitted_on`` say what it was
    measured to achieve on held-out data (:func:`models.decisions.fit_threshold`), shown in
    the console beside it. A hand-set threshold has neither.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    target_error: float | None = Field(default=None, gt=0.0, lt=1.0)
    error_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    coverage: float | None = Field(default=None, ge=0.0, le=1.0)
    fitted_on: int | None = Field(default=None, ge=1)


class Arm(BaseModel):
    """One arm of an experiment: which rules apply and whether model signals are used.

    ``rules`` empty means first-in-first-out (the purpose's default action only);
    ``None`` means every rule of the purpose. ``models: false`` drops rules that read live
    signals or model scores.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Token
    weight: float = Field(default=1.0, gt=0.0)
    rules: list[Token] | None = None
    models: bool = True


class Experiment(BaseModel):
    """An A/B test of a purpose's rules; arms are assigned by a keyed hash of the person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Token
    purpose: Token
    arms: Annotated[list[Arm], Field(min_length=2, max_length=8)]
    min_cell: int = Field(default=30, ge=5)
    active: bool = True

    @model_validator(mode="after")
    def _distinct_arms(self) -> Experiment:
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name!r} names an arm twice")
        return self


class Policy(BaseModel):
    """A whole policy as written; :func:`load_policy` validates it against the catalogue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")]
    rules: Annotated[list[Rule], Field(max_length=MAX_RULES)]
    defaults: dict[Token, Action] = Field(default_factory=dict)
    fallback: Fallback = Fallback()
    experiments: list[Experiment] = Field(default_factory=list)


def parse_policy(data: Mapping[str, Any] | str | Path) -> Policy:
    """Read a policy from a mapping, YAML text or a YAML file (shape only, no catalogue check).

    Raises
    ------
    PolicyError
        If the YAML or the shape is wrong; each problem names its place.
    """
    if isinstance(data, Path):
        try:
            data = data.read_text(encoding="utf-8")
        except OSError as error:
            raise PolicyError([f"cannot read the policy file {data}: {error.strerror}"]) from None
    if isinstance(data, str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as error:
            raise PolicyError([f"the policy is not valid YAML: {error}"]) from None
    if not isinstance(data, Mapping):
        raise PolicyError(["the policy must be a mapping with version and rules"])
    try:
        return Policy.model_validate(dict(data))
    except ValidationError as error:
        raise PolicyError(
            [
                f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}"
                for e in error.errors(include_input=False)
            ]
        ) from None


def is_pricing(kind: ActionKind) -> bool:
    """Whether an action kind sets prices or transaction terms."""
    return kind in (ActionKind.PRICE, ActionKind.TRANSACTION_TERMS)
