"""Compile a policy: CEL programs, the static consent check and Art. 24 refusals.

The CEL implementation is ``common-expression-language`` (Rust, no ``eval``): we write no
expression language ourselves. Its compiler lists every variable an expression reads, and
because profile fields are flat variables (:mod:`.names`) that list is the exact set of fields
a rule can see; it is checked against the caller's catalogue here, once, at load time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import cel

from .actions import KINDS_BY_PURPOSE, Action
from .names import (
    CONTACT_VARIABLES,
    SIGNAL_LABELS,
    SIGNAL_VARIABLES,
    field_variables,
    looks_like_field,
    signal_variable,
)
from .policy import Policy, PolicyError, Rule, is_pricing


@dataclass(frozen=True)
class CompiledRule:
    """A rule with its program and what it reads.

    Attributes
    ----------
    rule : Rule
        The rule as written.
    program : cel.Program
        Its compiled condition.
    fields : tuple[str, ...]
        Catalogued fields it reads (catalogue names, sorted).
    heads : tuple[str, ...]
        Live-signal heads it reads (label or probability).
    variables : tuple[str, ...]
        Every variable it reads.
    """

    rule: Rule
    program: cel.Program
    fields: tuple[str, ...]
    heads: tuple[str, ...]
    variables: tuple[str, ...]

    @property
    def model_driven(self) -> bool:
        """Reads a model's output: a live signal or a ``score.*`` field."""
        return bool(self.heads) or any(f.startswith("score.") for f in self.fields)

    @property
    def personal(self) -> bool:
        """Depends on the person (any profile field or live signal)."""
        return bool(self.fields) or bool(self.heads)


def _compile_rule(
    rule: Rule,
    *,
    by_variable: Mapping[str, str],
    field_purposes: Mapping[str, frozenset[str]],
    problems: list[str],
) -> CompiledRule | None:
    """Compile one rule, appending each problem found; ``None`` when it cannot be used."""
    where = f"rule {rule.id!r} (purpose {rule.purpose})"
    try:
        program = cel.compile(rule.when)
    except ValueError as error:
        problems.append(f"{where}: the condition is not valid CEL: {error}")
        return None
    variables = sorted(set(program.references()["variables"]))
    fields: list[str] = []
    heads: set[str] = set()
    for variable in variables:
        if variable in by_variable:
            field = by_variable[variable]
            if rule.purpose not in field_purposes[field]:
                problems.append(
                    f"{where} reads field {field!r}, which the catalogue does not allow for "
                    f"{rule.purpose} (allowed for: {', '.join(sorted(field_purposes[field]))})"
                )
            fields.append(field)
        elif variable in SIGNAL_VARIABLES:
            heads.update(h for h in SIGNAL_LABELS if variable.startswith(signal_variable(h)))
        elif looks_like_field(variable):
            problems.append(f"{where} reads {variable!r}, which is no catalogued field")
    if is_pricing(rule.action.kind) and (fields or heads):
        problems.append(
            f"{where} sets {rule.action.kind.value} from the person's characteristics "
            f"({', '.join(fields + sorted(heads))}); PIPL Art. 24 forbids unreasonable "
            "differential treatment in price or transaction terms"
        )
    compiled = CompiledRule(rule, program, tuple(fields), tuple(sorted(heads)), tuple(variables))
    try:  # a dry run with nothing known finds names that are neither fields nor signals
        program.execute(empty_context(compiled))
    except RuntimeError as error:
        if "Undefined variable" in str(error):
            problems.append(f"{where} reads a name that is no field, signal or contact fact")
    except (TypeError, ValueError):
        pass  # comparing an unknown (null) value: expected when nothing is known
    return compiled


def empty_context(rule: CompiledRule) -> dict[str, object]:
    """Return the rule's variables, all unknown (``null``)."""
    names = set(rule.variables) & (
        SIGNAL_VARIABLES | CONTACT_VARIABLES | {v for v in rule.variables if looks_like_field(v)}
    )
    return dict.fromkeys(names)


def _check_action(purpose: str, action: Action, where: str, problems: list[str]) -> None:
    allowed = KINDS_BY_PURPOSE.get(purpose)
    if allowed is None:
        problems.append(f"{where}: purpose {purpose} takes no automated decisions")
    elif action.kind not in allowed:
        problems.append(
            f"{where}: a {purpose} decision may not be {action.kind.value} "
            f"(allowed: {', '.join(sorted(k.value for k in allowed))})"
        )


def compile_rules(
    policy: Policy,
    *,
    field_purposes: Mapping[str, Iterable[str]],
    purposes: Iterable[str],
) -> tuple[CompiledRule, ...]:
    """Check the whole policy against the catalogue and compile its rules.

    Parameters
    ----------
    policy : Policy
        The parsed policy.
    field_purposes : Mapping[str, Iterable[str]]
        Each catalogued field and the purposes the catalogue allows it for.
    purposes : Iterable[str]
        The registered purposes.

    Raises
    ------
    PolicyError
        Listing every problem: the rule, and where it applies the field, is named.
    """
    known = set(purposes)
    allowed_for = {f: frozenset(p) for f, p in field_purposes.items()}
    problems: list[str] = []
    try:
        by_variable = field_variables(allowed_for)
    except ValueError as error:
        raise PolicyError([str(error)]) from None
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for rule in policy.rules:
        if rule.id in seen:
            problems.append(f"rule {rule.id!r} is defined twice")
        seen.add(rule.id)
        if rule.purpose not in known:
            problems.append(f"rule {rule.id!r} names unknown purpose {rule.purpose!r}")
            continue
        _check_action(rule.purpose, rule.action, f"rule {rule.id!r}", problems)
        result = _compile_rule(
            rule, by_variable=by_variable, field_purposes=allowed_for, problems=problems
        )
        if result is not None:
            compiled.append(result)
    for purpose, action in policy.defaults.items():
        if purpose not in known:
            problems.append(f"defaults name unknown purpose {purpose!r}")
        else:
            _check_action(purpose, action, f"the default for {purpose}", problems)
    by_id = {rule.id: rule for rule in policy.rules}
    for experiment in policy.experiments:
        for arm in experiment.arms:
            for rule_id in arm.rules or ():
                if rule_id not in by_id or by_id[rule_id].purpose != experiment.purpose:
                    problems.append(
                        f"experiment {experiment.name!r} arm {arm.name!r} names rule "
                        f"{rule_id!r}, which is no {experiment.purpose} rule of this policy"
                    )
    if problems:
        raise PolicyError(problems)
    return tuple(compiled)

