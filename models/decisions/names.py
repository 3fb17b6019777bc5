"""The names a decision rule may read: profile fields, live signals and contact facts.

A rule's condition is a CEL expression over flat variables. A catalogued profile field is
the variable named like the field with ``.`` written ``_`` (``feature.monetary_90d`` →
``feature_monetary_90d``). Flat names are what make the static consent check exact: the CEL
compiler reports every variable an expression reads, so a rule that names a field its
purpose may not use is refused when the policy loads, whatever the expression's shape.

Live signals are what the edge computed from the message in hand (never its text):
``signal_intent``, ``signal_emotion``, ``signal_urgency`` with their probabilities
``signal_intent_p``... Contact facts (``contact_channel``) describe the contact itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

#: The heads an edge may send with a contact, and the labels each may take.
SIGNAL_LABELS: Mapping[str, tuple[str, ...]] = {
    "intent": ("inquiry", "complaint", "purchase", "return"),
    "emotion": ("negative", "neutral", "positive"),
    "urgency": ("low", "normal", "urgent"),
}
#: Channels a contact may arrive on.
CHANNELS: tuple[str, ...] = ("web", "app", "desk", "sms", "social")
#: Prefixes of the catalogue's field families; a variable with one of these is a field.
FIELD_PREFIXES: tuple[str, ...] = ("tag_", "feature_", "score_", "text_", "finance_")
#: Variables that describe the contact, not the person.
CONTACT_VARIABLES: frozenset[str] = frozenset({"contact_channel"})

_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


def signal_variable(head: str) -> str:
    """Name the variable holding a head's label (``intent`` → ``signal_intent``)."""
    return f"signal_{head}"


def probability_variable(head: str) -> str:
    """Name the variable holding a head's probability (``intent`` → ``signal_intent_p``)."""
    return f"signal_{head}_p"


#: Every signal variable: labels and probabilities.
SIGNAL_VARIABLES: frozenset[str] = frozenset(
    name
    for head in SIGNAL_LABELS
    for name in (signal_variable(head), probability_variable(head))
)


def field_variable(field: str) -> str:
    """Name the CEL variable of a catalogued field (``text.last_intent`` → ``text_last_intent``).

    Raises
    ------
    ValueError
        If ``field`` is not a dotted lower-case catalogue name.
    """
    if not _FIELD_NAME.match(field):
        raise ValueError(
            "a catalogued field name is dotted lower-case, e.g. feature.monetary_90d"
        )
    return field.replace(".", "_")


def field_variables(fields: Iterable[str]) -> dict[str, str]:
    """Map each field's variable to the field, refusing two fields that share a variable.

    Raises
    ------
    ValueError
        If two catalogued fields would be read through the same variable.
    """
    variables: dict[str, str] = {}
    for field in fields:
        variable = field_variable(field)
        if variable in variables and variables[variable] != field:
            raise ValueError(
                f"fields {variables[variable]!r} and {field!r} would both be read as "
                f"{variable!r}; rename one in the catalogue"
            )
        variables[variable] = field
    return variables


def looks_like_field(variable: str) -> bool:
    """Whether a variable is in a field family's namespace (a typo there must not pass)."""
    return variable.startswith(FIELD_PREFIXES)


def signal_head(variable: str) -> str | None:
    """Return the head a label variable reads (``signal_intent`` → ``intent``), else ``None``."""
    for head in SIGNAL_LABELS:
        if variable == signal_variable(head):
            return head
    return None
