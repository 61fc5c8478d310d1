"""Settings of the credits service (environment prefix ``CREDITS_``)."""

from __future__ import annotations

from pathlib import Path

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
    # the accounts service's public API (unit paths of the school network)
    accounts_url: str = "http://127.0.0.1:8001"
    # the HMAC key of session check-in codes; created on first run when allowed
    checkin_key_file: Path | None = None
    generate_checkin_key: bool = True
    # how long before a session starts its check-in code already works
    checkin_opens_minutes: int = 15
    # partner batches: how long a learner's id and account status, as the accounts service
    # gave them, are reused (0: ask every batch); a closed account may post for this long
    learner_cache_seconds: float = 30.0
    learner_cache_size: int = 100_000

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'credits.sqlite3'}"
        if self.checkin_key_file is None:
            self.checkin_key_file = self.data_dir / "keys" / "credits-checkin.key"
        return self

    @property
    def checkin_key(self) -> Path:
        """The check-in key file (always set after validation)."""
        assert self.checkin_key_file is not None
        return self.checkin_key_file
