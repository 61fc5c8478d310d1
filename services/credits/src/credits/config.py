"""Settings of the credits service (environment prefix ``CREDITS_``)."""

from __future__ import annotations

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from kernel.settings import DatabaseSettings


class Settings(DatabaseSettings):
    """Everything the credits service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="CREDITS_", extra="ignore")

    port: int = 8002
    # the token issuer's published keys (the accounts service)
    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    jwks_ttl_seconds: float = 300.0

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'credits.sqlite3'}"
        return self
