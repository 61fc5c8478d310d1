"""The settings base every service builds on: one typed class, one env prefix per service."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ISSUER = "https://muye.example.org/accounts"
DEFAULT_AUDIENCE = "muye-credit-bank"


def normalise_database_url(url: str) -> str:
    """Map plain DSNs onto the async drivers we ship.

    ``postgresql://`` and ``postgres://`` become ``postgresql+asyncpg://``; ``sqlite:///`` becomes
    ``sqlite+aiosqlite:///``. A URL that already names a driver is kept as it is.
    """
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


class ServiceSettings(BaseSettings):
    """Settings shared by every service. Subclasses set ``env_prefix`` and the port."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    data_dir: Path = Path("var")
    token_issuer: str = DEFAULT_ISSUER
    token_audience: str = DEFAULT_AUDIENCE
    token_leeway_seconds: int = 30


class DatabaseSettings(ServiceSettings):
    """A service that owns a database. ``database_url`` is the one setting to switch engines."""

    database_url: str = ""

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value)
