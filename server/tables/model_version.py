"""The ``ModelVersion`` family: the model registry, one row per published global model.

The ServerApp publishes the aggregated global model of each round as the next version of its
model (``behaviour`` or ``text``: the run's task). A version keeps what a later run or an
edge needs to reuse it: the weights (an ``.npz`` archive of named arrays, written by
``models.weights_to_bytes``, never pickled) with their SHA-256, the architecture the weights
fit, the cumulative (ε, δ) of the releases it is built from, and the round's aggregated
evaluation metrics. The weights are a column of the table class only, so no ``*Public``
shape can carry them.
"""

from datetime import datetime

from sqlalchemy import LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class ArraySpec(SQLModel):
    """One named array of a model: its parameter name and shape."""

    name: str = Field(description="parameter name (registration order in the model)")
    shape: list[int] = Field(description="array shape")


class ArchitectureSpec(SQLModel):
    """What must match for a model's weights to be reused as they are.

    ``config`` holds the run-config keys that shape the task's model (``behaviour-hidden``
    and ``behaviour-sequence`` for the behaviour model; ``text-vocabulary`` and
    ``text-buckets`` for the text model); ``arrays`` every array's name and shape, in order.
    """

    task: str = Field(description="the model family: behaviour or text")
    config: dict[str, int] = Field(description="architecture keys of the run config")
    arrays: list[ArraySpec] = Field(description="each array's name and shape, in order")


class ModelVersionBase(SQLModel):
    """Facts every version shape shares (no weights).

    ``epsilon`` is the largest cumulative ε any edge reported for the round that produced the
    version (its ledger: every accounted release of every run), or the run's client-level
    central ε in ``dp-mode`` central and both; ``None`` when no finite guarantee was reported
    (``dp-mode`` off). ``delta`` is the δ that ε holds at.
    """

    model: str = Field(max_length=40, description="model name (the run's task)")
    version: int = Field(description="1, 2, 3... within the model")
    run_id: str = Field(
        foreign_key="training_run.id", max_length=36, index=True, description="training run"
    )
    server_round: int = Field(description="the run's round whose aggregate this is")
    epsilon: float | None = Field(default=None, description="cumulative ε (see above)")
    delta: float | None = Field(default=None, description="δ of that guarantee")
    sha256: str = Field(max_length=64, description="hex SHA-256 of the weights archive")
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


class ModelVersion(ModelVersionBase, table=True):
    """A published global model (table ``model_version``); JSON columns are text."""

    __tablename__ = "model_version"
    __table_args__ = (UniqueConstraint("model", "version", name="uq_model_version_model_version"),)

    id: str = Field(primary_key=True, max_length=36)
    metrics_json: str = Field(default="{}", sa_type=Text)
    architecture_json: str = Field(sa_type=Text)
    weights: bytes = Field(sa_type=LargeBinary)


class ModelVersionPublic(ModelVersionBase):
    """A version's metadata as the API returns it (the weights are a separate download)."""

    id: str
    metrics: dict[str, float] = Field(description="the round's aggregated evaluation metrics")
    architecture: ArchitectureSpec
