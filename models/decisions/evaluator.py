"""The pure decision-rule evaluator, shared by the server and edges that decide in process.

:meth:`DecisionPolicy.decide` sees only what it is given: the fields the person's consent
allows for the purpose now (the caller's job, and the server's invariant 10), the live
signals of the message in hand and the contact's channel. A purpose's rules run as one CEL
program returning one boolean per rule (about 25 µs for a dozen rules); a rule whose inputs
are unknown (``null``) simply does not hold.

The rule with the highest priority among those that hold decides. A model-driven decision
(one that reads live signals) carries the lowest probability among the signals it read as its
confidence; below the policy's threshold the decision is ``human``. A person who refused
solely automated decisions always gets ``human``, and no rule is evaluated for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import cel

from .actions import HUMAN, Action
from .compile import CompiledRule, compile_rules
from .names import SIGNAL_LABELS, field_variable, probability_variable, signal_variable
from .policy import Arm, Experiment, Fallback, Policy, parse_policy


class FallbackReason(StrEnum):
    """Why a decision went to a human."""

    REFUSED_AUTOMATED = "refused_automated"
    LOW_CONFIDENCE = "low_confidence"


@dataclass(frozen=True)
class Signals:
    """Live, edge-computed signals of the message in hand (never its text).

    Parameters
    ----------
    labels : Mapping[str, str]
        Head → label (``{"intent": "complaint", "urgency": "urgent"}``).
    probabilities : Mapping[str, float]
        Head → the model's probability of that label (1.0 for an agent's label).
    channel : str or None
        The channel the contact arrived on.
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    probabilities: Mapping[str, float] = field(default_factory=dict)
    channel: str | None = None


@dataclass(frozen=True)
class FiredRule:
    """A rule that held, with the inputs it read and its confidence."""

    rule: str
    reason_zh: str
    reason_en: str
    inputs: Mapping[str, Any]
    confidence: float


@dataclass(frozen=True)
class Outcome:
    """One decision.

    Attributes
    ----------
    purpose : str
        The purpose decided for.
    action : Action or None
        What to do; ``None`` when no rule held and the purpose has no default.
    automated : bool
        Whether a rule decided (``False`` for the human fallback and for defaults).
    fired : tuple[FiredRule, ...]
        Every rule that held, highest priority first.
    decided_by : str or None
        The rule that decided.
    confidence : float
        The deciding rule's confidence (1.0 when it read no model output).
    fallback : FallbackReason or None
        Why a human decides instead.
    fields_read : tuple[str, ...]
        The profile fields the evaluation read that had a value.
    arm : str or None
        The experiment arm the person is in.
    """

    purpose: str
    action: Action | None
    automated: bool
    fired: tuple[FiredRule, ...]
    decided_by: str | None
    confidence: float
    fallback: FallbackReason | None
    fields_read: tuple[str, ...]
    arm: str | None = None

    def explanation(self, lang: str = "en") -> str:
        """Explain the decision in a sentence an agent or the person reads (``zh``, ``en``)."""
        zh = lang == "zh"
        if self.fallback is FallbackReason.REFUSED_AUTOMATED:
            return "客户已拒绝仅由自动化方式作出的决定，由人工处理。" if zh else (
                "The customer refused solely automated decisions; a human decides."
            )
        head = [r for r in self.fired if r.rule == self.decided_by]
        if self.fallback is FallbackReason.LOW_CONFIDENCE and head:
            return (
                f"模型把握不足（置信度 {self.confidence:.2f}），转人工；"
                f"本可适用规则：{head[0].reason_zh}"
                if zh
                else f"The model is unsure (confidence {self.confidence:.2f}), so a human "
                f"decides; the rule that would apply: {head[0].reason_en}"
            )
        if not head:
            return "无规则适用，按默认方式处理。" if zh else "No rule applies; the default is used."
        rule = head[0]
        inputs = ", ".join(f"{k}={_shown(v)}" for k, v in sorted(rule.inputs.items()))
        reason = rule.reason_zh if zh else rule.reason_en
        if zh:
            return (
                f"{reason}（规则 {rule.rule}；依据：{inputs or '无'}；"
                f"置信度 {self.confidence:.2f}）"
            )
        return (
            f"{reason} (rule {rule.rule}; based on: {inputs or 'nothing'}; "
            f"confidence {self.confidence:.2f})"
        )


def _shown(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class _Batch:
    """A purpose's rules in priority order, compiled as one program."""

    rules: tuple[CompiledRule, ...]
    program: cel.Program | None
    variables: tuple[tuple[str, str, str], ...]  # (variable, kind, key)


def _variable_source(variable: str, rules: Sequence[CompiledRule]) -> tuple[str, str, str]:
    for rule in rules:
        for name in rule.fields:
            if field_variable(name) == variable:
                return (variable, "field", name)
    for head in SIGNAL_LABELS:
        if variable == signal_variable(head):
            return (variable, "label", head)
        if variable == probability_variable(head):
            return (variable, "probability", head)
    if variable == "contact_channel":
        return (variable, "channel", "")
    return (variable, "other", "")


def _batch(rules: Sequence[CompiledRule]) -> _Batch:
    ordered = tuple(sorted(rules, key=lambda r: -r.rule.priority))
    if not ordered:
        return _Batch((), None, ())
    program = cel.compile("[" + ", ".join(f"({r.rule.when})" for r in ordered) + "]")
    names = sorted({v for r in ordered for v in r.variables})
    sources = tuple(s for s in (_variable_source(v, ordered) for v in names) if s[1] != "other")
    return _Batch(ordered, program, sources)


class DecisionPolicy:
    """A validated, compiled policy; build with :meth:`load`."""

    def __init__(self, policy: Policy, rules: Iterable[CompiledRule]) -> None:
        self.policy = policy
        self.rules = tuple(rules)
        self._batches: dict[tuple[str, str | None], _Batch] = {}

    @classmethod
    def load(
        cls,
        source: Mapping[str, Any] | str | Path,
        *,
        field_purposes: Mapping[str, Iterable[str]],
        purposes: Iterable[str],
    ) -> DecisionPolicy:
        """Parse, check against the catalogue and compile (see :mod:`.policy`).

        Raises
        ------
        PolicyError
            Naming every refused rule and the field or action at fault.
        """
        policy = parse_policy(source)
        return cls(policy, compile_rules(policy, field_purposes=field_purposes, purposes=purposes))

    @property
    def fallback(self) -> Fallback:
        """The human-fallback threshold and what it was measured to achieve."""
        return self.policy.fallback

    def experiment(self, purpose: str) -> Experiment | None:
        """Return the active experiment on a purpose, if any."""
        for experiment in self.policy.experiments:
            if experiment.active and experiment.purpose == purpose:
                return experiment
        return None

    def purposes(self) -> tuple[str, ...]:
        """List the purposes the policy decides for."""
        return tuple(sorted({r.rule.purpose for r in self.rules} | set(self.policy.defaults)))

    def _batch_for(self, purpose: str, arm: Arm | None) -> _Batch:
        key = (purpose, arm.name if arm else None)
        if key not in self._batches:
            rules = [r for r in self.rules if r.rule.purpose == purpose]
            if arm is not None:
                if arm.rules is not None:
                    rules = [r for r in rules if r.rule.id in arm.rules]
                if not arm.models:
                    rules = [r for r in rules if not r.model_driven]
            self._batches[key] = _batch(rules)
        return self._batches[key]

    def decide(
        self,
        purpose: str,
        fields: Mapping[str, Any],
        signals: Signals | None = None,
        *,
        refused_automated: bool = False,
        arm: Arm | None = None,
    ) -> Outcome:
        """Decide for one person.

        Parameters
        ----------
        purpose : str
            The purpose decided for.
        fields : Mapping[str, Any]
            Catalogue name → value of the fields consent allows for ``purpose`` now (a
            tag's boolean value); nothing else may be passed.
        signals : Signals or None
            Live signals of the contact.
        refused_automated : bool
            The person refused solely automated decisions (PIPL Art. 24, GDPR Art. 22).
        arm : Arm or None
            The experiment arm whose rules apply.
        """
        arm_name = arm.name if arm else None
        if refused_automated:
            return Outcome(purpose, HUMAN, False, (), None, 1.0,
                           FallbackReason.REFUSED_AUTOMATED, (), arm_name)  # fmt: skip
        batch = self._batch_for(purpose, arm)
        context = _context(batch, fields, signals or Signals())
        held = _evaluate(batch, context)
        live = signals or Signals()
        fired = tuple(
            _fired(rule, context, live) for rule, ok in zip(batch.rules, held, strict=True) if ok
        )
        read = tuple(sorted({k for v, kind, k in batch.variables
                             if kind == "field" and context.get(v) is not None}))  # fmt: skip
        if not fired:
            default = self.policy.defaults.get(purpose)
            return Outcome(purpose, default, False, (), None, 1.0, None, read, arm_name)
        top, rule = fired[0], next(r for r in batch.rules if r.rule.id == fired[0].rule)
        if rule.model_driven and top.confidence < self.policy.fallback.min_confidence:
            return Outcome(purpose, HUMAN, False, fired, top.rule, top.confidence,
                           FallbackReason.LOW_CONFIDENCE, read, arm_name)  # fmt: skip
        return Outcome(purpose, rule.rule.action, True, fired, top.rule, top.confidence,
                       None, read, arm_name)  # fmt: skip


def _context(batch: _Batch, fields: Mapping[str, Any], signals: Signals) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for variable, kind, key in batch.variables:
        if kind == "field":
            value = fields.get(key)
            context[variable] = float(value) if isinstance(value, int) and not isinstance(
                value, bool) else value  # fmt: skip
        elif kind == "label":
            context[variable] = signals.labels.get(key)
        elif kind == "probability":
            p = signals.probabilities.get(key)
            context[variable] = float(p) if p is not None else None
        else:
            context[variable] = signals.channel
    return context


def _evaluate(batch: _Batch, context: dict[str, Any]) -> list[bool]:
    """Each rule's verdict; a rule whose evaluation errs (unknown inputs) does not hold."""
    if batch.program is None:
        return []
    try:
        return [value is True for value in batch.program.execute(context)]
    except (RuntimeError, TypeError, ValueError, KeyError):
        verdicts = []
        for rule in batch.rules:
            try:
                verdicts.append(rule.program.execute(context) is True)
            except (RuntimeError, TypeError, ValueError, KeyError):
                verdicts.append(False)
        return verdicts


def _fired(rule: CompiledRule, context: Mapping[str, Any], signals: Signals) -> FiredRule:
    """Collect the rule's inputs and confidence: the lowest probability among the heads it read."""
    inputs: dict[str, Any] = {f: context.get(field_variable(f)) for f in rule.fields}
    confidence = 1.0
    for head in rule.heads:
        inputs[signal_variable(head)] = signals.labels.get(head)
        p = signals.probabilities.get(head)
        confidence = min(confidence, float(p) if p is not None else 0.0)
    return FiredRule(rule.rule.id, rule.rule.reason_zh, rule.rule.reason_en, inputs, confidence)
