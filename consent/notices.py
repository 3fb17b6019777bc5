"""Privacy notice versions and the renewal rule (PIPL Art. 14 para 2, ISO/IEC 29184 5.5).

A notice version covers some purposes. Publishing a *material* version for a purpose P means
the conditions of P changed (what is collected, how, for what): every grant of P given under
an older version is paused from the moment of publication until the subject grants P again
under the new version (or a later one covering P). Non-material versions (typo fixes,
translations) pause nothing.

The rule lives here so the edge and the server apply the same one: build a
:class:`NoticeRegistry` from the published notices and pass it to ``ConsentState(...,
notices=...)``. A paused grant never becomes more than it was: the registry can only turn a
granted purpose off, never on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import NoticeError
from .purposes import Purpose
from .records import ConsentEvent, ConsentStatus
from .times import ConsentTime

#: Notice version labels: what channels record in ``ConsentEvent.notice_version``.
NOTICE_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,39}$"


class NoticeDraft(BaseModel):
    """A notice version as an officer publishes it (the server stamps the time).

    Parameters
    ----------
    version : str
        Version label, exactly as channels record it in consent events (1-40 characters of
        letters, digits, ``.``, ``_``, ``:`` and ``-``).
    purposes : tuple[Purpose, ...]
        Purposes the notice covers (at least one; stored sorted and without duplicates).
    material : bool
        Whether the change is material for the covered purposes: grants given under older
        versions are paused until renewed.
    content_hash : str
        Hex SHA-256 of the notice text as shown (the server need not hold the text).
    url : str
        Where the notice stays readable (ISO/IEC 29184 5.2 "ongoing reference").
    language : str
        BCP 47 language tag of the text, e.g. ``zh-CN``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(pattern=NOTICE_VERSION_PATTERN)
    purposes: tuple[Purpose, ...] = Field(min_length=1)
    material: bool
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    url: str = Field(pattern=r"^https?://\S+$", max_length=500)
    language: str = Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=20)

    @field_validator("purposes")
    @classmethod
    def _sorted_unique(cls, value: tuple[Purpose, ...]) -> tuple[Purpose, ...]:
        return tuple(sorted(set(value)))


class Notice(NoticeDraft):
    """A published notice version.

    Parameters
    ----------
    published_at : datetime
        When it took effect (timezone-aware); pausing starts at this moment.
    **draft
        The fields of :class:`NoticeDraft`.
    """

    published_at: ConsentTime


class NoticeRegistry:
    """The published notices, answering "does this grant need renewal at time t?".

    Parameters
    ----------
    notices : Iterable[Notice]
        Published notices in any order.

    Raises
    ------
    NoticeError
        If a version label appears twice.
    """

    def __init__(self, notices: Iterable[Notice] = ()) -> None:
        ordered = sorted(notices, key=lambda n: (n.published_at, n.version))
        versions = [n.version for n in ordered]
        duplicates = sorted({v for v in versions if versions.count(v) > 1})
        if duplicates:
            raise NoticeError(f"notice version(s) published twice: {', '.join(duplicates)}")
        self._notices = tuple(ordered)
        self._by_version = {n.version: n for n in ordered}

    @property
    def notices(self) -> tuple[Notice, ...]:
        """The notices, oldest publication first."""
        return self._notices

    def __len__(self) -> int:
        return len(self._notices)

    def get(self, version: str) -> Notice | None:
        """Return the notice with label ``version``, if published."""
        return self._by_version.get(version)

    def latest_for(self, purpose: Purpose, at: datetime) -> Notice | None:
        """Return the newest notice covering ``purpose`` published at or before ``at``."""
        found: Notice | None = None
        for notice in self._notices:
            if notice.published_at > at:
                break
            if purpose in notice.purposes:
                found = notice
        return found

    def material_cutoff(self, purpose: Purpose, at: datetime) -> Notice | None:
        """Return the newest *material* notice covering ``purpose`` in force at ``at``."""
        found: Notice | None = None
        for notice in self._notices:
            if notice.published_at > at:
                break
            if notice.material and purpose in notice.purposes:
                found = notice
        return found

    def accepted_versions(self, purpose: Purpose, at: datetime) -> frozenset[str] | None:
        """Return the versions a grant of ``purpose`` may carry at ``at``.

        Parameters
        ----------
        purpose : Purpose
            The purpose.
        at : datetime
            The moment of use.

        Returns
        -------
        frozenset[str] or None
            ``None`` when no material notice covers the purpose yet (any version is
            accepted); otherwise the newest material notice covering it and every notice
            covering it published since.
        """
        cutoff = self.material_cutoff(purpose, at)
        if cutoff is None:
            return None
        start = self._notices.index(cutoff)
        return frozenset(
            n.version
            for n in self._notices[start:]
            if n.published_at <= at and purpose in n.purposes
        )

    def needs_renewal(self, event: ConsentEvent, at: datetime) -> bool:
        """Whether ``event`` is a grant paused by a material notice at ``at``.

        Parameters
        ----------
        event : ConsentEvent
            A consent event (only grants can need renewal).
        at : datetime
            The moment of use.

        Returns
        -------
        bool
            True if the event is a grant and its ``notice_version`` is not among
            :meth:`accepted_versions` for its purpose at ``at``.
        """
        if event.status is not ConsentStatus.GRANTED:
            return False
        accepted = self.accepted_versions(event.purpose, at)
        return accepted is not None and event.notice_version not in accepted
