"""Every parameter of the contact-outcome model, in one place, with the reasoning behind it.

The outcome model (:mod:`.queueing`) turns a routing decision into what happened to the
contact: who handled it, how long the customer waited, whether it was transferred and
whether it was resolved at first contact. The same parameters apply to every policy; only
the routing differs. The values are round numbers argued from contact-centre practice, not
fitted to make any policy win. The one outside anchor is first-contact resolution (FCR): 65–85%
on average in industry, 70–80% counted good, above 80% world class
(``shared/notes/profile_core.md`` §4). Predictive-routing products compare against
first-in-first-out (FIFO) queues, which is why FIFO is the baseline here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: The service desks (queues) of the default policy, plus self-service.
DESKS: tuple[str, ...] = ("general", "senior", "complaints", "returns", "sales")
SELF_SERVICE = "self_service"
#: The desk whose agents are trained and equipped for each true intent.
INTENT_DESK: Mapping[str, str] = MappingProxyType(
    {"inquiry": "general", "complaint": "complaints", "return": "returns", "purchase": "sales"}
)


def _agents(values: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(values)


def _seconds(values: dict[str, float]) -> Mapping[str, float]:
    return MappingProxyType(values)


@dataclass(frozen=True)
class OutcomeParams:
    """The contact-outcome model: desks, agents, handle times, resolution, transfers, waits.

    Parameters
    ----------
    agents : Mapping[str, int]
        Agents on each desk for the whole working day. Sized for the default load (800
        contacts in a 12-hour day, average handle time about 380 s, so about 7 Erlangs of
        work on average and about 9 at the busiest hour) with the desks in proportion to the
        work each intent brings (complaints are a third of contacts and the longest), plus
        two senior agents: 13 agents, 60-70% busy on average. Staffing is the same for every
        policy: a policy that transfers less frees capacity, one that sends too much to a
        small desk makes it wait.
    resolve_matched : float
        Probability that an agent whose desk is trained for the contact's intent resolves it
        at first contact, before the waiting penalty. Skilled handling in good centres
        resolves 80-90% of contacts.
    transfer_unmatched : float
        Probability that an agent without the skill transfers the contact to the right desk
        (after ``triage_s`` of talking), rather than trying. Agents transfer what they lack
        the tools or authority for (refunds, compensation, order changes) about half of
        the time.
    resolve_unmatched : float
        Probability that an agent without the skill who keeps the contact resolves it: a
        generalist settles about half of specialist issues (explains a return policy but
        cannot approve the exception).
    authority_gap : float
        Subtracted from the resolution probability when a contact needs senior authority (a
        high-value customer with a complaint or in a negative mood) and no senior agent
        handles it: goodwill gestures and exceptions need seniority.
    wait_grace_s : float
        Waiting up to this long costs nothing.
    wait_penalty_per_min : float
        Resolution probability lost per minute waited beyond the grace: long waits sour a
        conversation and customers give up on the fix.
    urgent_wait_factor : float
        How much faster an urgent contact's patience runs out (its penalty per minute is
        this many times larger); priority handling is what protects it.
    max_wait_penalty : float
        Cap of the waiting penalty.
    self_service_resolve_simple : float
        Probability that self-service answers settle a simple, calm inquiry (not urgent, not
        negative): FAQ and order-status bots settle most of those.
    self_service_resolve_other : float
        Probability that self-service settles anything else (complaints, returns, urgent or
        upset customers): rarely.
    self_service_response_s : float
        Seconds until the bot's first answer.
    self_service_attempt_s : float
        Seconds a customer spends with the bot before asking for a human when it fails.
    handoff_priority : int
        Queue priority (0-9) of a failed self-service contact handed to the general desk:
        slightly ahead of plain contacts, as it already waited with the bot.
    triage_s : float
        Agent seconds spent before a transfer (listening, noting, handing over).
    handle_s : Mapping[str, float]
        Mean handle time in seconds per true intent (chat and phone averages of 4-9
        minutes; complaints take longest).
    handle_cv : float
        Coefficient of variation of the (log-normal) handle time.
    overflow_after_s : float
        A contact waiting this long in a specialist or senior queue may be taken by any
        free agent (target expansion in skills-based routing); transferred contacts wait
        for their desk.
    """

    agents: Mapping[str, int] = field(
        default_factory=lambda: _agents(
            {"general": 3, "senior": 2, "complaints": 4, "returns": 2, "sales": 2}
        )
    )
    resolve_matched: float = 0.88
    transfer_unmatched: float = 0.5
    resolve_unmatched: float = 0.5
    authority_gap: float = 0.2
    wait_grace_s: float = 60.0
    wait_penalty_per_min: float = 0.01
    urgent_wait_factor: float = 3.0
    max_wait_penalty: float = 0.3
    self_service_resolve_simple: float = 0.8
    self_service_resolve_other: float = 0.1
    self_service_response_s: float = 5.0
    self_service_attempt_s: float = 150.0
    handoff_priority: int = 1
    triage_s: float = 90.0
    handle_s: Mapping[str, float] = field(
        default_factory=lambda: _seconds(
            {"inquiry": 240.0, "purchase": 300.0, "return": 420.0, "complaint": 540.0}
        )
    )
    handle_cv: float = 0.5
    overflow_after_s: float = 180.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in (
            "resolve_matched",
            "transfer_unmatched",
            "resolve_unmatched",
            "authority_gap",
            "max_wait_penalty",
            "self_service_resolve_simple",
            "self_service_resolve_other",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be within [0, 1]")
        for name in (
            "wait_grace_s",
            "wait_penalty_per_min",
            "self_service_response_s",
            "self_service_attempt_s",
            "triage_s",
            "handle_cv",
            "overflow_after_s",
        ):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if self.urgent_wait_factor < 1.0:
            problems.append("urgent_wait_factor must be >= 1")
        if not 0 <= self.handoff_priority <= 9:
            problems.append("handoff_priority must be within 0-9")
        if set(self.agents) != set(DESKS) or any(n < 1 for n in self.agents.values()):
            problems.append(f"agents must give at least one agent to each of {', '.join(DESKS)}")
        if set(self.handle_s) != set(INTENT_DESK) or any(s <= 0 for s in self.handle_s.values()):
            problems.append("handle_s must give a positive time to each intent")
        if problems:
            raise ValueError("; ".join(problems))

    def as_dict(self) -> dict[str, object]:
        """Return the parameters as plain JSON values (for ``metrics.json``)."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = dict(value) if isinstance(value, Mapping) else value
        return out


#: What each desk's agents are trained and equipped for (true intents). Every agent answers
#: plain inquiries; specialists add their desk's intent; senior agents handle everything and
#: hold the authority for exceptions and goodwill.
DESK_SKILLS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "general": frozenset({"inquiry"}),
        "complaints": frozenset({"inquiry", "complaint"}),
        "returns": frozenset({"inquiry", "return"}),
        "sales": frozenset({"inquiry", "purchase"}),
        "senior": frozenset(INTENT_DESK),
    }
)
