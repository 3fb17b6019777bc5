"""The contact-outcome model: a discrete-event simulation of one contact centre's working days.

A routed contact either goes to self-service (a bot; it answers at once and settles simple,
calm inquiries, otherwise hands the customer to the general desk) or waits in its desk's
queue: highest priority first, then arrival order. Agents belong to a desk (``general``,
``senior``, ``complaints``, ``returns``, ``sales``: the queues of the default policy) and,
when their own queue is empty, take the general queue; a contact that has waited
``overflow_after_s`` in another queue may be taken by any free agent (target expansion).
The longest-idle agent picks first.

What happens at the agent (:class:`~.params.OutcomeParams` holds every number):

1. the agent's desk is trained for the contact's true intent, or not; without the skill the
   agent transfers it to the intent's desk (after a short triage) with probability
   ``transfer_unmatched``: the contact queues again there, and was not resolved at first
   contact;
2. otherwise the agent resolves it with ``resolve_matched`` or ``resolve_unmatched``, less
   ``authority_gap`` when a high-value customer with a complaint or a negative mood meets a
   non-senior agent, less the waiting penalty (steeper for urgent contacts).

Each contact brings its own random draws (:mod:`.contacts`), so two policies that route a
contact the same way give it the same fate, and differences come from routing alone.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from models.decisions import ActionKind

from .contacts import Contact
from .params import DESK_SKILLS, DESKS, INTENT_DESK, SELF_SERVICE, OutcomeParams
from .routers import Routing


class Leg(StrEnum):
    """Why a contact is in a queue."""

    FIRST = "first"  # routed there; the first agent may resolve it at first contact
    HANDOFF = "handoff"  # self-service failed; a human takes over
    TRANSFERRED = "transferred"  # an agent without the skill passed it on


@dataclass(frozen=True)
class ContactOutcome:
    """What happened to one contact.

    Parameters
    ----------
    contact_id : str
        The contact.
    routed_to : str
        The desk or ``self_service`` the router chose.
    first_handler : str
        ``self_service`` or the desk of the first agent.
    first_response_s : float
        Seconds from arrival to the first answer (the bot's, or an agent picking it up).
    agent_wait_s : float
        Seconds queued before the first agent (0 when self-service settled it).
    transferred : bool
        Moved on after the first handler (agent transfer or self-service hand-off).
    resolved_first_contact : bool
        Settled by the first handler, without a transfer.
    resolved : bool
        Settled in the end (a transferred contact by its second agent).
    senior : bool
        A senior agent handled it.
    """

    contact_id: str
    routed_to: str
    first_handler: str
    first_response_s: float
    agent_wait_s: float
    transferred: bool
    resolved_first_contact: bool
    resolved: bool
    senior: bool


@dataclass
class _Agent:
    desk: str
    number: int
    idle_since: float = 0.0
    busy: bool = False
    busy_s: float = 0.0

    @property
    def senior(self) -> bool:
        return self.desk == "senior"


@dataclass(order=True)
class _Waiting:
    key: tuple[int, float, int]  # (-priority, ready time, sequence)
    contact: Contact = field(compare=False)
    desk: str = field(compare=False)
    leg: Leg = field(compare=False)
    pinned: bool = field(compare=False)


@dataclass
class _State:
    """A contact's running record while it moves through the centre."""

    routed_to: str
    first_response_s: float | None = None
    first_handler: str | None = None
    queued_s: float = 0.0
    transferred: bool = False
    resolved_first: bool = False
    resolved: bool = False
    senior: bool = False


class _Day:
    """One working day: queues, agents and the event list."""

    def __init__(self, params: OutcomeParams) -> None:
        self.params = params
        self.agents = [_Agent(desk, n) for desk in DESKS for n in range(params.agents[desk])]
        self.queues: dict[str, list[_Waiting]] = {desk: [] for desk in DESKS}
        self.events: list[tuple[float, int, str, object]] = []
        self.states: dict[str, _State] = {}
        self.seq = 0

    # ------------------------------------------------------------------ events
    def push(self, at: float, kind: str, payload: object) -> None:
        """Schedule an event (ties keep the order they were scheduled in)."""
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, payload))

    def run(self, routed: Sequence[tuple[Contact, Routing]]) -> None:
        """Process arrivals, queue entries and free agents until every contact is served."""
        for contact, routing in routed:
            self.push(contact.arrival_s, "arrive", (contact, routing))
        while self.events:
            now, _, kind, payload = heapq.heappop(self.events)
            if kind == "arrive":
                assert isinstance(payload, tuple)
                self.arrive(now, *payload)
            elif kind == "ready":
                assert isinstance(payload, _Waiting)
                self.queues[payload.desk].append(payload)
                if payload.desk != "general" and not payload.pinned:
                    self.push(now + self.params.overflow_after_s, "wake", None)
            elif kind == "free":
                assert isinstance(payload, _Agent)
                payload.busy, payload.idle_since = False, now
            self.dispatch(now)

    def enqueue(self, at: float, contact: Contact, *, desk: str, priority: int, leg: Leg) -> None:
        """Put ``contact`` in ``desk``'s queue at ``at`` (a transferred one waits for its desk)."""
        self.seq += 1
        waiting = _Waiting((-priority, at, self.seq), contact, desk, leg, leg is Leg.TRANSFERRED)
        self.push(at, "ready", waiting)

    # ------------------------------------------------------------------ arrivals
    def arrive(self, now: float, contact: Contact, routing: Routing) -> None:
        """Start a contact where its routing sends it: the bot or a desk's queue."""
        p = self.params
        action = routing.action
        if action.kind is ActionKind.SELF_SERVICE:
            state = self.states[contact.contact_id] = _State(SELF_SERVICE)
            state.first_response_s, state.first_handler = p.self_service_response_s, SELF_SERVICE
            simple = contact.simple
            chance = p.self_service_resolve_simple if simple else p.self_service_resolve_other
            if contact.uniforms[0] < chance:
                state.resolved_first = state.resolved = True
                return
            state.transferred = True
            self.enqueue(
                now + p.self_service_attempt_s,
                contact,
                desk="general",
                priority=p.handoff_priority,
                leg=Leg.HANDOFF,
            )
            return
        desk = action.queue if action.kind is ActionKind.QUEUE and action.queue else "general"
        if desk not in self.queues:
            raise ValueError(f"the policy routes to an unknown queue {desk!r}")
        self.states[contact.contact_id] = _State(desk)
        self.enqueue(now, contact, desk=desk, priority=action.priority, leg=Leg.FIRST)

    # ------------------------------------------------------------------ dispatch
    def candidate(self, agent: _Agent, now: float) -> _Waiting | None:
        """Return the contact ``agent`` takes next: own queue, then general and overflow."""
        own = self.queues[agent.desk]
        if own:
            return min(own)
        pool = list(self.queues["general"])
        for desk, queue in self.queues.items():
            if desk not in ("general", agent.desk):
                waited = self.params.overflow_after_s
                pool += [w for w in queue if not w.pinned and now - w.key[1] >= waited]
        return min(pool) if pool else None

    def dispatch(self, now: float) -> None:
        """Let every idle agent, longest idle first, take the contact it should take next."""
        for agent in sorted(
            (a for a in self.agents if not a.busy), key=lambda a: (a.idle_since, a.desk, a.number)
        ):
            waiting = self.candidate(agent, now)
            if waiting is None:
                continue
            self.queues[waiting.desk].remove(waiting)
            self.serve(agent, waiting, now)

    # ------------------------------------------------------------------ service
    def serve(self, agent: _Agent, waiting: _Waiting, now: float) -> None:
        """Decide the contact's fate at ``agent``: transfer, or resolved or not (steps 1-2)."""
        p, contact, leg = self.params, waiting.contact, waiting.leg
        state = self.states[contact.contact_id]
        state.queued_s += now - waiting.key[1]
        if state.first_response_s is None:
            state.first_response_s = now - contact.arrival_s
            state.first_handler = agent.desk
        state.senior = state.senior or agent.senior
        matched = contact.intent in DESK_SKILLS[agent.desk]
        transfers = not matched and leg is not Leg.TRANSFERRED
        if transfers and contact.uniforms[1] < p.transfer_unmatched:
            state.transferred = True
            self.occupy(agent, now, p.triage_s)
            self.enqueue(
                now + p.triage_s,
                contact,
                desk=INTENT_DESK[contact.intent],
                priority=-waiting.key[0],
                leg=Leg.TRANSFERRED,
            )
            return
        chance = p.resolve_matched if matched else p.resolve_unmatched
        if contact.needs_senior and not agent.senior:
            chance -= p.authority_gap
        chance -= wait_penalty(state.queued_s, urgent=contact.urgency == "urgent", params=p)
        draw = contact.uniforms[3] if leg is Leg.TRANSFERRED else contact.uniforms[2]
        resolved = draw < chance
        state.resolved = resolved
        if leg is Leg.FIRST:
            state.resolved_first = resolved
        z = contact.normals[1] if leg is Leg.TRANSFERRED else contact.normals[0]
        self.occupy(agent, now, handle_time(contact.intent, z, p))

    def occupy(self, agent: _Agent, now: float, seconds: float) -> None:
        """Keep ``agent`` busy for ``seconds``."""
        agent.busy = True
        agent.busy_s += seconds
        self.push(now + seconds, "free", agent)


def wait_penalty(waited_s: float, *, urgent: bool, params: OutcomeParams) -> float:
    """Resolution probability lost to ``waited_s`` seconds in queues."""
    minutes = max(0.0, waited_s - params.wait_grace_s) / 60.0
    rate = params.wait_penalty_per_min * (params.urgent_wait_factor if urgent else 1.0)
    return min(params.max_wait_penalty, rate * minutes)


def handle_time(intent: str, z: float, params: OutcomeParams) -> float:
    """Return a log-normal handle time with the intent's mean and the model's variation."""
    sigma = math.sqrt(math.log1p(params.handle_cv**2))
    return params.handle_s[intent] * math.exp(sigma * z - sigma**2 / 2)


@dataclass(frozen=True)
class CentreRun:
    """Outcomes of every contact and how busy the agents were.

    Parameters
    ----------
    outcomes : tuple[ContactOutcome, ...]
        One per contact, in input order.
    occupancy : float
        Agents' busy time over their time in the opening hours.
    """

    outcomes: tuple[ContactOutcome, ...]
    occupancy: float


def simulate_centre(
    contacts: Sequence[Contact],
    route: Callable[[Contact], Routing],
    params: OutcomeParams,
    *,
    open_seconds: float,
) -> CentreRun:
    """Route and serve ``contacts`` day by day; return each contact's outcome.

    Parameters
    ----------
    contacts : Sequence[Contact]
        The contacts (any order; each day starts with empty queues).
    route : Callable[[Contact], Routing]
        The router.
    params : OutcomeParams
        The outcome model.
    open_seconds : float
        Length of the opening hours (for the occupancy).

    Returns
    -------
    CentreRun
        Outcomes in the order of ``contacts`` and the agents' occupancy.

    Raises
    ------
    ValueError
        If a routing names a queue the centre does not have.
    """
    by_day: dict[int, list[tuple[Contact, Routing]]] = {}
    for contact in contacts:
        by_day.setdefault(contact.day, []).append((contact, route(contact)))
    states: dict[str, _State] = {}
    busy = 0.0
    for day in sorted(by_day):
        centre = _Day(params)
        centre.run(by_day[day])
        states.update(centre.states)
        busy += sum(a.busy_s for a in centre.agents)
    staffed = sum(params.agents.values()) * open_seconds * max(len(by_day), 1)
    outcomes = tuple(_outcome(c.contact_id, states[c.contact_id]) for c in contacts)
    return CentreRun(outcomes, busy / staffed if staffed else 0.0)


def _outcome(contact_id: str, state: _State) -> ContactOutcome:
    first = state.first_response_s if state.first_response_s is not None else math.nan
    wait = 0.0 if state.first_handler == SELF_SERVICE and not state.transferred else state.queued_s
    return ContactOutcome(
        contact_id=contact_id,
        routed_to=state.routed_to,
        first_handler=state.first_handler or "",
        first_response_s=round(first, 3),
        agent_wait_s=round(wait, 3),
        transferred=state.transferred,
        resolved_first_contact=state.resolved_first and not state.transferred,
        resolved=state.resolved,
        senior=state.senior,
    )
