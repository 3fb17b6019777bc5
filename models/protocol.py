"""Wire records and keys shared by the edge and the server.

Everything that crosses the profile plane (HTTPS) or the learning plane (Flower messages) is
defined here once, so the uploader and the routes, the ClientApp and the ServerApp cannot
drift apart. Consent events travel as ``consent.ConsentEvent`` (the consent room owns them).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .bounds import INT64_MAX, BoundedTime

API_PREFIX = "/api/v1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ENROLLMENT_HEADER = "X-Enrollment-Token"

#: Pseudonyms are ``ps_`` + 64 lower-case hex digits; the same rule as ``consent``.
PSEUDONYM_REGEX = r"^ps_[0-9a-f]{64}$"


class Channel(StrEnum):
    """The customer-service channels an edge can serve."""

    WEB = "web"
    APP = "app"
    DESK = "desk"
    SMS = "sms"
    SOCIAL = "social"


# ------------------------------------------------------------------ profile plane (HTTP)


class EdgeRegistration(BaseModel):
    """Request to register an edge with the server."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    channel: Channel


class EdgeCredential(BaseModel):
    """The server's answer to a registration: the edge's id and bearer token (shown once)."""

    edge_id: str
    name: str
    channel: Channel
    token: str


class ExplanationItem(BaseModel):
    """One feature's contribution to a tag or score (names and weights, never raw data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    weight: float = Field(ge=-1000.0, le=1000.0, allow_inf_nan=False)
    label_zh: str = Field(default="", max_length=64)
    label_en: str = Field(default="", max_length=64)


class ProfileFieldIn(BaseModel):
    """A profile field as uploaded by an edge."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=80, pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
    )
    value: bool | int | float | str
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    explanation: list[ExplanationItem] = Field(default_factory=list, max_length=10)
    provisional: bool = False
    computed_at: BoundedTime


class ProfileUpload(BaseModel):
    """Fields for one pseudonymous subject, uploaded for one declared purpose.

    ``replace`` marks a complete snapshot (``fedprofile edge sync --full``): the edge's
    stored contributions for this subject and purpose that the upload does not name are
    dropped, so the server ends up holding exactly what the edge holds.
    """

    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(min_length=1, max_length=40)
    fields: list[ProfileFieldIn] = Field(min_length=1, max_length=100)
    replace: bool = False


class UploadResult(BaseModel):
    """What the server stored for an upload (repeats with the same key return the same)."""

    subject: str
    purpose: str
    stored: list[str]
    replayed: bool = False


class RefusedField(BaseModel):
    """One field the policy refused, with its stable reason code."""

    field: str
    reason: str
    message: str


class BatchUploadItem(BaseModel):
    """One subject's upload inside a batch, with its own idempotency key."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(pattern=PSEUDONYM_REGEX)
    idempotency_key: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    upload: ProfileUpload


class BatchUploadRequest(BaseModel):
    """Many subjects' uploads in one request; each item succeeds or fails on its own."""

    model_config = ConfigDict(extra="forbid")

    items: list[BatchUploadItem] = Field(min_length=1, max_length=500)


class BatchItemError(BaseModel):
    """Why one batch item was not stored (stable code; refused fields for consent refusals)."""

    error: str
    message: str
    refused: list[RefusedField] = Field(default_factory=list)


class BatchItemResult(BaseModel):
    """Outcome of one batch item: ``status`` is the HTTP status the single upload would get."""

    subject: str
    idempotency_key: str
    status: int
    result: UploadResult | None = None
    error: BatchItemError | None = None


class BatchUploadResponse(BaseModel):
    """Per-item outcomes, in request order."""

    results: list[BatchItemResult]


class Contribution(BaseModel):
    """One edge's contribution to a merged field, with its provenance."""

    edge_id: str | None = Field(description="the contributing edge (None: set by an officer)")
    channel: str | None = None
    value: bool | int | float | str
    confidence: float | None = None
    computed_at: BoundedTime


class ProfileFieldOut(BaseModel):
    """A profile field as returned to a reader: the merge of every edge's contribution.

    ``merge`` names the catalogue rule that combined the contributions (``derived``: the
    server recomputed the tag from merged fields, explained in those fields); ``channels``
    lists the contributing channels; ``contributions`` is filled only when the reader asks
    for the breakdown (``?breakdown=channel``).
    """

    name: str
    value: bool | int | float | str | list[str]
    confidence: float | None = None
    explanation: list[ExplanationItem] = Field(default_factory=list)
    provisional: bool = False
    computed_at: BoundedTime
    source_channel: str | None = None
    merge: str | None = None
    channels: list[str] = Field(default_factory=list)
    contributions: list[Contribution] | None = None


class ProfileRead(BaseModel):
    """A subject's profile filtered to what consent allows for the stated purpose."""

    subject: str
    purpose: str
    fields: list[ProfileFieldOut]
    withheld: int = Field(
        description="stored fields not returned because consent or the catalogue forbids them"
    )
    person: str | None = Field(
        default=None,
        description="the person the pseudonym is linked into (its fields are merged over every "
        "linked pseudonym under the most restrictive consent); None when it stands alone",
    )
    pseudonyms: int = Field(default=1, description="pseudonyms merged into this read")


class ConsentBatchResult(BaseModel):
    """Outcome of uploading consent events."""

    recorded: int
    duplicates: int = 0
    #: Events about an erased subject dated before its erasure (a stale edge's backlog);
    #: refused so they cannot bring the subject back.
    refused_erased: int = 0


class LedgerEntryWire(BaseModel):
    """One accounted training release, as reported by an edge."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(max_length=64)
    round: int = Field(ge=0, le=INT64_MAX)
    model: str = Field(max_length=40)
    accountant: str = Field(max_length=10)
    noise_multiplier: float = Field(ge=0.0, allow_inf_nan=False)
    sample_rate: float = Field(gt=0.0, le=1.0)
    steps: int = Field(ge=0, le=INT64_MAX)
    delta: float = Field(gt=0.0, lt=1.0)
    epsilon_after: float = Field(ge=0.0, allow_inf_nan=False)
    neighbouring: str = Field(max_length=40)
    sampling: str = Field(max_length=40)
    level: str = Field(max_length=20)
    recorded_at: BoundedTime


class LedgerReport(BaseModel):
    """An edge's privacy ledger for one model, as reported to the server."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(max_length=40)
    epsilon: float = Field(ge=0.0, allow_inf_nan=False)
    delta: float = Field(gt=0.0, lt=1.0)
    accountant: str = Field(max_length=10)
    budget: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    exhausted: bool = False
    entries: list[LedgerEntryWire] = Field(default_factory=list, max_length=10_000)


class Health(BaseModel):
    """Liveness and integrity summary."""

    status: str
    database: str
    audit_entries: int
    audit_head: str | None


#: Largest number of ``old -> new`` pairs in one re-keying batch.
REKEY_BATCH_MAX = 1000
#: Tenant key ids are ``tk_`` + 16 hex digits (``privacy.tenant_key_id``).
TENANT_KID_REGEX = r"^tk_[0-9a-f]{16}$"


class RekeyPair(BaseModel):
    """One subject's pseudonym before and after a tenant key rotation."""

    model_config = ConfigDict(extra="forbid")

    old: str = Field(pattern=PSEUDONYM_REGEX)
    new: str = Field(pattern=PSEUDONYM_REGEX)


class RekeyBatch(BaseModel):
    """A batch of an edge's re-keying mapping (``POST /edges/me/rekey``).

    The server renames every row of each ``old`` pseudonym to ``new`` in one transaction; it
    never sees a tenant key. ``from_kid`` and ``to_kid`` are the public ids of the generation
    mapped from and to.
    """

    model_config = ConfigDict(extra="forbid")

    from_kid: str = Field(pattern=TENANT_KID_REGEX)
    to_kid: str = Field(pattern=TENANT_KID_REGEX)
    pairs: list[RekeyPair] = Field(min_length=1, max_length=REKEY_BATCH_MAX)

    @model_validator(mode="after")
    def _distinct(self) -> RekeyBatch:
        """Refuse a batch that renames a pseudonym twice or chains renames inside itself."""
        olds = [pair.old for pair in self.pairs]
        news = [pair.new for pair in self.pairs]
        if self.from_kid == self.to_kid:
            raise ValueError("from_kid and to_kid must differ")
        if len(set(olds)) != len(olds) or len(set(news)) != len(news):
            raise ValueError("each old and each new pseudonym may appear once per batch")
        if set(olds) & set(news):
            raise ValueError("no pseudonym may be both an old and a new one in a batch")
        return self


class RekeyBatchResult(BaseModel):
    """What the server did with a re-keying batch (counts only).

    ``applied``: subjects renamed now; ``already_applied``: pairs an earlier batch (this edge's
    retry or another edge) applied; ``unknown``: old pseudonyms the server never held;
    ``tombstoned``: erased subjects whose tombstone now covers the new pseudonym too;
    ``fields_resealed``: sealed fields re-encrypted for the new pseudonym.
    """

    applied: int
    already_applied: int
    unknown: int
    tombstoned: int = 0
    fields_resealed: int = 0
    rows_renamed: dict[str, int] = Field(default_factory=dict)


# ------------------------------------------------------------------ learning plane (Flower)

#: RecordDict keys used in train/evaluate messages (FedAvg defaults for the first two).
ARRAYS_KEY = "arrays"
CONFIG_KEY = "config"
METRICS_KEY = "metrics"
#: ConfigRecord in replies that names the replying edge (channel, edge name).
EDGE_INFO_KEY = "edge"

#: Metric keys every train reply carries (all replies must carry identical keys).
METRIC_NUM_EXAMPLES = "num-examples"
METRIC_TRAIN_LOSS = "train-loss"
METRIC_EPSILON = "epsilon"
METRIC_DELTA = "delta"
METRIC_SUBJECTS_INCLUDED = "subjects-included"
METRIC_SUBJECTS_EXCLUDED = "subjects-excluded"
METRIC_BUDGET_EXHAUSTED = "budget-exhausted"
#: Examples an edge really trained on (``num-examples`` is the FedAvg weight, constant 1 in
#: central-DP runs, where Flower's wrapper needs equal weights).
METRIC_EXAMPLES_TRAINED = "examples-trained"
#: The run's client-level central ε after a round (server accountant) and its δ.
METRIC_CENTRAL_EPSILON = "central-epsilon"
METRIC_CENTRAL_DELTA = "central-delta"
#: Error codes of ClientApp error replies (Flower ``Error.code``); the ServerApp reads them.
ERROR_BAD_CONFIG = 3100
ERROR_NO_EDGE_DATA = 3101
ERROR_BAD_MESSAGE = 3102
ERROR_NO_EXAMPLES = 3103
ERROR_BUDGET_EXHAUSTED = 3104

#: Metric keys of evaluate replies.
METRIC_EVAL_LOSS = "eval-loss"
METRIC_EVAL_AUC = "eval-auc"
METRIC_EVAL_ACCURACY = "eval-accuracy"

#: ConfigRecord key of every train / evaluate message: which global model the message's
#: arrays are. ``<model>:v<N>`` is version N of the server's model registry (the same text as
#: the ``X-Model-Version`` header of ``GET /models/{model}/versions/{N}/weights``);
#: ``seed:<seed>`` is the run's seeded initial model (a cold start); ``<base>+r<round>`` is
#: the aggregate of that round of the run, started from ``<base>``, that no registry holds.
CONFIG_MODEL_VERSION = "model-version"
#: Response headers of a model-weights download: the version label and the SHA-256 (hex) of
#: the body, which the downloader checks before loading the weights.
MODEL_VERSION_HEADER = "X-Model-Version"
CONTENT_SHA256_HEADER = "X-Content-SHA256"


def model_version_label(model: str, version: int) -> str:
    """Return the label of a registry version (``"text:v3"``), as edges receive it.

    Parameters
    ----------
    model : str
        Model name (the run-config ``task``: ``behaviour`` or ``text``).
    version : int
        Version number within that model (1, 2, 3...).

    Returns
    -------
    str
        ``<model>:v<version>``.
    """
    return f"{model}:v{version}"


#: Pattern of a keyed identity token (``privacy.IdentityTokenizer``).
IDENTITY_TOKEN_REGEX = r"^it_[0-9a-f]{64}$"
#: Identifier kinds a token may be of (``privacy.IdentifierKind`` values).
TOKEN_KIND_REGEX = r"^[a-z_]{2,20}$"


class IdentityTokenWire(BaseModel):
    """One keyed identity token: the kind of identifier and its HMAC, never the value."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(pattern=TOKEN_KIND_REGEX)
    token: str = Field(pattern=IDENTITY_TOKEN_REGEX)


class IdentityTokenItem(BaseModel):
    """The identity tokens an edge holds for one pseudonym."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(pattern=PSEUDONYM_REGEX)
    tokens: list[IdentityTokenWire] = Field(min_length=1, max_length=32)


class IdentityTokenBatch(BaseModel):
    """Up to 500 pseudonyms' identity tokens in one request."""

    model_config = ConfigDict(extra="forbid")

    items: list[IdentityTokenItem] = Field(min_length=1, max_length=500)


class IdentityTokenResult(BaseModel):
    """What the server did with a batch of identity tokens."""

    recorded: int = Field(description="new (pseudonym, token) pairs")
    duplicates: int = Field(description="pairs the server already held")
    refused: int = Field(
        description="pseudonyms refused: no consent for any purpose, restricted or erased"
    )
    linked: int = Field(description="pseudonyms that joined or moved to a person")
    hubs: int = Field(description="hub tokens met (shared by too many pseudonyms; never link)")
    refused_subjects: list[str] = Field(
        default_factory=list,
        description="the refused pseudonyms (the edge sends their tokens again later)",
    )


class IdentityEncodingItem(BaseModel):
    """One pseudonym's keyed Bloom-filter encoding of its quasi-identifiers.

    ``record`` is the edge's encoded JSON object (``privacy.encoded_json_line``: id, format
    version, key id and per-field filters under keyed labels); its ``id`` must equal
    ``subject``. No raw value is in it.
    """

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(pattern=PSEUDONYM_REGEX)
    record: dict[str, Any]


class IdentityEncodingBatch(BaseModel):
    """Up to 500 pseudonyms' encodings in one request."""

    model_config = ConfigDict(extra="forbid")

    items: list[IdentityEncodingItem] = Field(min_length=1, max_length=500)


class IdentityEncodingResult(BaseModel):
    """What the server did with a batch of encodings."""

    recorded: int = Field(description="encodings stored or changed")
    unchanged: int = Field(description="encodings the server already held as they are")
    refused: int = Field(
        description="pseudonyms refused: no consent for any purpose, restricted or erased"
    )
    refused_subjects: list[str] = Field(
        default_factory=list,
        description="the refused pseudonyms (the edge sends their encodings again later)",
    )
    matches: int = Field(description="new probabilistic matches (linked automatically)")
    reviews: int = Field(description="new pairs put in front of officers for review")
    linked: int = Field(description="pseudonyms that joined or moved to a person")
