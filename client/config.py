"""Settings of an edge process: one ``ClientSettings`` object, built once at the entry point.

Values come from (highest first) constructor arguments, ``FEDPROFILE_*`` environment
variables and defaults. Nested sections use ``__``: ``FEDPROFILE_DP__NOISE_MULTIPLIER=1.2``,
``FEDPROFILE_PII__SCORE_THRESHOLD=0.5``. Lists accept JSON or commas:
``FEDPROFILE_UPLOAD_PURPOSES=marketing,service_routing``.

Nothing here runs at import time; entry points call ``get_client_settings()``.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from consent import parse_purpose
from privacy import DPConfig, PIIConfig

logger = logging.getLogger(__name__)

#: File names inside an edge directory.
TENANT_KEY_FILENAME = "tenant.key"
CREDENTIALS_FILENAME = "credentials.json"
QUARANTINE_FILENAME = "quarantine.jsonl"

DEFAULT_UPLOAD_PURPOSES: tuple[str, ...] = (
    "personalized_service",
    "service_routing",
    "proactive_service",
    "marketing",
)

_PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "change_me", "changethis", "secret", "token", "test", "xxx"}
)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ClientSettings(BaseSettings):
    """Settings of one edge.

    Parameters
    ----------
    environment : {"development", "production"}
        ``production`` refuses placeholder enrollment tokens and plain HTTP to a non-loopback
        server.
    edge_dir : Path
        Directory holding the edge's store, tenant key, credentials and quarantine file.
    server_url : str
        Base URL of the fedprofile server (without the ``/api/v1`` prefix).
    tenant_key_path : Path or None
        The tenant's pseudonymisation key file (32 bytes, mode 0600); ``None`` means
        ``<edge_dir>/tenant.key``. Edges of one tenant share the key so that a customer gets
        the same pseudonym on every channel; the server never holds it.
    enrollment_token : SecretStr or None
        One-time token the server expects when an edge registers.
    upload_purposes : tuple[str, ...]
        Purposes the uploader uploads profile fields for (each a registered purpose).
    http_timeout : float
        Seconds to wait for the server per request.
    retry_base_seconds : float
        First retry delay of a failed upload; doubles per attempt.
    retry_max_seconds : float
        Upper bound of the retry delay.
    retry_jitter : float
        Relative jitter of a retry delay: the delay is multiplied by a uniform factor in
        ``[1 - jitter, 1 + jitter]``.
    upload_batch_size : int
        Outbox items delivered per round trip to the store.
    pii : PIIConfig
        PII detection and masking settings (privacy room).
    dp : DPConfig
        Local differential-privacy training settings (privacy room).
    """

    model_config = SettingsConfigDict(
        env_prefix="FEDPROFILE_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    environment: Literal["development", "production"] = "development"
    edge_dir: Path = Path("./.fedprofile/edge")
    server_url: str = "http://127.0.0.1:8000"
    tenant_key_path: Path | None = None
    enrollment_token: SecretStr | None = None
    upload_purposes: Annotated[tuple[str, ...], NoDecode] = DEFAULT_UPLOAD_PURPOSES
    http_timeout: float = Field(default=10.0, gt=0.0, le=600.0)
    retry_base_seconds: float = Field(default=2.0, gt=0.0)
    retry_max_seconds: float = Field(default=900.0, gt=0.0)
    retry_jitter: float = Field(default=0.25, ge=0.0, lt=1.0)
    upload_batch_size: int = Field(default=200, ge=1, le=10_000)
    pii: PIIConfig = PIIConfig()
    dp: DPConfig = DPConfig()

    @field_validator("server_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("server_url must be an http(s) URL such as http://127.0.0.1:8000")
        return value.strip().rstrip("/")

    @field_validator("upload_purposes", mode="before")
    @classmethod
    def _split_purposes(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(p.strip() for p in text.split(",") if p.strip())
        return value

    @field_validator("upload_purposes")
    @classmethod
    def _check_purposes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("upload_purposes must name at least one purpose")
        # parse_purpose raises a ConsentError listing the known purposes; pydantic needs
        # a ValueError to report it as a validation error.
        checked: list[str] = []
        for name in value:
            try:
                checked.append(parse_purpose(name).value)
            except Exception as exc:  # noqa: BLE001 - re-raised as the ValueError pydantic wants
                raise ValueError(str(exc)) from None
        return tuple(dict.fromkeys(checked))

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment != "production":
            return self
        token = self.enrollment_token
        if token is not None and token.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("enrollment_token is a placeholder; set a real token in production")
        parts = urlsplit(self.server_url)
        if parts.scheme != "https" and (parts.hostname or "") not in _LOOPBACK_HOSTS:
            raise ValueError(
                "server_url must use https in production (plain http only on loopback)"
            )
        return self

    # ------------------------------------------------------------------ derived paths
    @property
    def key_path(self) -> Path:
        """The tenant key file actually used (``tenant_key_path`` or the edge default)."""
        return self.tenant_key_path or self.edge_dir / TENANT_KEY_FILENAME

    @property
    def credentials_path(self) -> Path:
        """Where the edge's server credentials are kept (mode 0600)."""
        return self.edge_dir / CREDENTIALS_FILENAME

    @property
    def quarantine_path(self) -> Path:
        """Where rejected input lines are kept, with their line numbers and reasons."""
        return self.edge_dir / QUARANTINE_FILENAME

    def override(self, **changes: Any) -> ClientSettings:
        """Return a validated copy with ``changes`` applied (``None`` values are ignored).

        Parameters
        ----------
        **changes : Any
            Field values to replace, e.g. ``edge_dir=Path("x")`` from a CLI option.

        Returns
        -------
        ClientSettings
            A new settings object; the environment is not read again.
        """
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return type(self).model_validate(data)


@lru_cache(maxsize=1)
def get_client_settings() -> ClientSettings:
    """Build the edge settings once from the environment (call from entry points only).

    Returns
    -------
    ClientSettings
        The process-wide settings object.
    """
    settings = ClientSettings()
    logger.debug("edge settings loaded (edge_dir=%s)", settings.edge_dir)
    return settings
