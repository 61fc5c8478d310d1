"""The settings base every service builds on: one typed class, one env prefix per service."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.keyfiles import load_hex_key

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
    # the key the services behind the gateway sign their calls to each other's internal routes
    # with (kernel.servicecalls): hex here (a deployment's secret, the same for both), else the
    # file (default: data_dir/keys/service-calls.key, made by `accounts-admin init-keys`)
    service_call_key: SecretStr | None = None
    service_call_key_file: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value)

    def service_key(self, *, create: bool) -> bytes:
        """The shared service call key; the file is made when missing and ``create``."""
        if self.service_call_key is not None:
            try:
                return bytes.fromhex(self.service_call_key.get_secret_value())
            except ValueError:
                raise ValueError(
                    "service_call_key must be hexadecimal, the same for accounts and credits"
                    " (make one with: python -c 'import secrets; print(secrets.token_hex(32))')"
                ) from None
        path = self.service_call_key_file or self.data_dir / "keys" / "service-calls.key"
        return load_hex_key(path, create=create, hint="run `accounts-admin init-keys`")
