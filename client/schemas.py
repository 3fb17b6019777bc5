"""Input schema of an edge: one JSON object per line, discriminated by ``kind``.

Three kinds arrive from the channel systems: behaviour ``event``s, customer ``message``s and
``consent`` decisions. Each names its customer through a ``customer`` object holding at least
one strong identifier; the edge turns it into a pseudonym and never stores the identifier.
The schema is documented for users in ``docs/edge-input.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models import BoundedTime, Channel, EventType
from models.text import EMOTIONS, INTENTS, URGENCIES

#: Identifier fields of a customer reference, strongest first (the pseudonym comes from the
#: first one present; every one present becomes an identity token).
CUSTOMER_IDENTIFIERS: tuple[str, ...] = (
    "phone",
    "email",
    "id_number",
    "account_id",
    "member_card",
    "wechat_unionid",
    "wechat_openid",
    "device_id",
)


#: Quasi-identifiers a customer reference may carry: never stored, never pseudonymised; the
#: edge encodes them as keyed Bloom filters for probabilistic linkage on the server.
CUSTOMER_QUASI_IDENTIFIERS: tuple[str, ...] = ("name", "birth_date", "address", "postcode")


class CustomerRef(BaseModel):
    """Identifiers of the customer an input line is about (at least one is required).

    ``name``, ``birth_date``, ``address`` and ``postcode`` are quasi-identifiers: optional,
    never enough on their own, encoded (keyed Bloom filters) and dropped at ingestion.
    """

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    id_number: str | None = Field(default=None, max_length=32)
    account_id: str | None = Field(default=None, max_length=128)
    member_card: str | None = Field(default=None, max_length=64)
    wechat_unionid: str | None = Field(default=None, max_length=64)
    wechat_openid: str | None = Field(default=None, max_length=64)
    device_id: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=64)
    birth_date: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=200)
    postcode: str | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _at_least_one(self) -> CustomerRef:
        if not any(getattr(self, name) for name in CUSTOMER_IDENTIFIERS):
            raise ValueError(f"customer needs at least one of {', '.join(CUSTOMER_IDENTIFIERS)}")
        return self


class EventLine(BaseModel):
    """A behaviour event (page view, purchase, complaint, ...)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["event"]
    event_id: str = Field(min_length=1, max_length=128)
    type: EventType
    channel: Channel
    ts: BoundedTime
    customer: CustomerRef
    category: str | None = Field(default=None, max_length=64)
    amount: float | None = Field(default=None, ge=-10_000_000.0, le=10_000_000.0)
    currency: str = Field(default="CNY", pattern=r"^[A-Za-z]{3}$")
    session_id: str | None = Field(default=None, max_length=128)
    rating: int | None = Field(default=None, ge=1, le=5)


#: Chinese names agents use for each label (ticket dispositions), to the canonical label.
LABEL_ALIASES: dict[str, dict[str, str]] = {
    "intent": {"咨询": "inquiry", "投诉": "complaint", "购买": "purchase", "退换": "return"},
    "emotion": {"负面": "negative", "中性": "neutral", "正面": "positive"},
    "urgency": {"低": "low", "不急": "low", "普通": "normal", "一般": "normal", "紧急": "urgent"},
}
#: The labels each head accepts (the text model's classes, ``models.text``).
LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "intent": INTENTS,
    "emotion": EMOTIONS,
    "urgency": URGENCIES,
}


class MessageLabels(BaseModel):
    """Labels an agent gave a message (e.g. from the ticket disposition); each is optional.

    Values are the text model's labels in English (``complaint``, ``urgent``...) or the
    Chinese names agents use (投诉, 紧急...). The edge trains its text model on them; an
    unknown value rejects the line with a message naming the accepted ones.
    """

    model_config = ConfigDict(extra="forbid")

    intent: str | None = None
    emotion: str | None = None
    urgency: str | None = None

    @field_validator("intent", "emotion", "urgency", mode="before")
    @classmethod
    def _canonical(cls, value: object, info: object) -> object:
        """Map a Chinese name to its label and refuse values the head does not know."""
        if value is None or not isinstance(value, str):
            return value
        head = getattr(info, "field_name", "")
        label = LABEL_ALIASES[head].get(value.strip(), value.strip().lower())
        if label not in LABEL_VALUES[head]:
            accepted = ", ".join(LABEL_VALUES[head] + tuple(LABEL_ALIASES[head]))
            raise ValueError(f"unknown {head} label; use one of: {accepted}")
        return label

    def present(self) -> dict[str, str]:
        """Return the labels that are set, head name to label."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class MessageLine(BaseModel):
    """A customer message; its text is PII-masked before it is stored.

    ``labels`` (optional) are an agent's intent / emotion / urgency for the message; the
    edge's text model trains on labelled messages and scores the others.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["message"]
    message_id: str = Field(min_length=1, max_length=128)
    channel: Channel
    ts: BoundedTime
    customer: CustomerRef
    text: str = Field(min_length=1, max_length=5000)
    lang: Literal["zh", "en"] = "zh"
    labels: MessageLabels | None = None


class ConsentLine(BaseModel):
    """A consent decision collected at the channel."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["consent"]
    consent_id: str = Field(min_length=1, max_length=128)
    channel: Channel
    ts: BoundedTime
    customer: CustomerRef
    purpose: str = Field(min_length=1, max_length=40)
    status: Literal["granted", "withdrawn", "revoked", "expired"]
    notice_version: str = Field(min_length=1, max_length=40)
    separate: bool = False
    expires_at: BoundedTime | None = None


InputLine = Annotated[EventLine | MessageLine | ConsentLine, Field(discriminator="kind")]
