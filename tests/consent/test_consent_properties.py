"""Property tests of the consent rules (hypothesis).

Random histories of grants, withdrawals, revocations, expiring grants, separate consents and
notice publications are checked against an independent oracle written from the rules' plain
statement: no read is ever allowed that consent does not allow at that moment, notices only
ever narrow what the events grant, and merging identities never widens consent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from consent import (
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    Notice,
    NoticeRegistry,
    Purpose,
    evaluate,
    load_default_catalogue,
    most_restrictive,
)

CATALOGUE = load_default_catalogue()
FIELDS = [f.name for f in CATALOGUE.fields] + ["tag.not_catalogued"]
PURPOSES = list(Purpose)
SUBJECT = "ps_" + "1" * 64
T0 = datetime(2026, 11, 1, tzinfo=UTC)
VERSIONS = ["v0", "v1", "v2", "v3", "v4"]


@dataclass(frozen=True)
class Step:
    """One thing that happens at minute ``minute``: an event or a notice publication."""

    minute: int
    event: ConsentEvent | None = None
    notice: Notice | None = None


def _at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


@st.composite
def _event(draw: st.DrawFn, minute: int) -> ConsentEvent:
    status = draw(st.sampled_from(list(ConsentStatus)))
    expires = draw(st.none() | st.integers(min_value=1, max_value=30))
    return ConsentEvent(
        subject=SUBJECT,
        purpose=draw(st.sampled_from(PURPOSES)),
        status=status,
        occurred_at=_at(minute),
        notice_version=draw(st.sampled_from(VERSIONS)),
        channel="web",
        separate=draw(st.booleans()),
        expires_at=None if expires is None else _at(minute + expires),
    )


@st.composite
def _history(draw: st.DrawFn) -> list[Step]:
    """A time-ordered history; each notice version label is published at most once."""
    steps: list[Step] = []
    unpublished = list(VERSIONS[1:])
    minute = 0
    for _ in range(draw(st.integers(min_value=0, max_value=14))):
        minute += draw(st.integers(min_value=1, max_value=10))
        if unpublished and draw(st.integers(min_value=0, max_value=3)) == 0:
            version = unpublished.pop(0)
            purposes = draw(st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3))
            notice = Notice(
                version=version,
                purposes=tuple(purposes),
                material=draw(st.booleans()),
                content_hash="d" * 64,
                url="https://example.com/n",
                language="zh-CN",
                published_at=_at(minute),
            )
            steps.append(Step(minute, notice=notice))
        else:
            steps.append(Step(minute, event=draw(_event(minute))))
    return steps


def _split(steps: list[Step]) -> tuple[list[ConsentEvent], list[Notice]]:
    events = [s.event for s in steps if s.event is not None]
    notices = [s.notice for s in steps if s.notice is not None]
    return events, notices


def _oracle_allows(
    events: list[ConsentEvent], notices: list[Notice], field: str, purpose: Purpose, at: datetime
) -> bool:
    """The rules as stated in docs/consent.md, written without the library's helpers."""
    spec = next((f for f in CATALOGUE.fields if f.name == field), None)
    if spec is None or purpose not in spec.purposes:
        return False
    mine = [e for e in events if e.purpose is purpose and e.occurred_at <= at]
    if not mine:
        return False
    latest = mine[-1]  # events are generated in time order, one per minute
    if latest.status is not ConsentStatus.GRANTED:
        return False
    if latest.expires_at is not None and latest.expires_at <= at:
        return False
    if spec.sensitivity.value == "sensitive" and not latest.separate:
        return False
    in_force = [n for n in notices if n.published_at <= at and purpose in n.purposes]
    material = [n for n in in_force if n.material]
    if material:
        cutoff = material[-1].published_at
        accepted = {n.version for n in in_force if n.published_at >= cutoff}
        if latest.notice_version not in accepted:
            return False
    return True


@settings(max_examples=80, deadline=None)
@given(steps=_history(), probe=st.integers(min_value=0, max_value=200))
def test_no_read_is_allowed_that_consent_does_not_allow_at_that_moment(
    steps: list[Step], probe: int
) -> None:
    events, notices = _split(steps)
    state = ConsentState(events, notices=NoticeRegistry(notices))
    for minute in {probe, *(s.minute for s in steps)}:
        at = _at(minute)
        for field in FIELDS:
            for purpose in PURPOSES:
                decision = evaluate(
                    catalogue=CATALOGUE, consent=state, field=field, purpose=purpose, at=at
                )
                expected = _oracle_allows(events, notices, field, purpose, at)
                assert decision.allowed is expected, (field, purpose, minute, decision.reason)


@settings(max_examples=80, deadline=None)
@given(steps=_history(), extra=st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3))
def test_notices_and_renewal_never_widen_consent(steps: list[Step], extra: list[Purpose]) -> None:
    events, notices = _split(steps)
    end = _at(max((s.minute for s in steps), default=0) + 1)
    bare = ConsentState(events)
    with_notices = ConsentState(events, notices=NoticeRegistry(notices))
    more = Notice(
        version="v-extra",
        purposes=tuple(extra),
        material=True,
        content_hash="e" * 64,
        url="https://example.com/x",
        language="en",
        published_at=end,
    )
    with_more = ConsentState(events, notices=NoticeRegistry([*notices, more]))
    moments = [_at(s.minute) for s in steps] + [end + timedelta(days=d) for d in (0, 1, 40)]
    for at in moments:
        granted_bare = bare.granted_purposes(at)
        granted = with_notices.granted_purposes(at)
        assert granted <= granted_bare
        assert with_more.granted_purposes(at) <= granted
        # A paused grant is never reported as granted, and only a grant can be paused.
        for purpose in PURPOSES:
            if with_notices.needs_renewal(purpose, at):
                assert purpose in granted_bare and purpose not in granted


@settings(max_examples=50, deadline=None)
@given(histories=st.lists(_history(), min_size=1, max_size=3), probe=st.integers(0, 200))
def test_merging_identities_never_widens_consent(histories: list[list[Step]], probe: int) -> None:
    states = [ConsentState(_split(h)[0], notices=NoticeRegistry(_split(h)[1])) for h in histories]
    at = _at(probe)
    for purpose in PURPOSES:
        merged = most_restrictive(states, purpose, at)
        assert merged == all(s.is_granted(purpose, at) for s in states)
        for state in states:
            assert not merged or state.is_granted(purpose, at)
        # Adding one more identity can only keep or narrow what the merge grants.
        assert not most_restrictive([*states, ConsentState()], purpose, at)
