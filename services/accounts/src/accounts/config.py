"""Settings of the accounts service (environment prefix ``ACCOUNTS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from kernel.settings import DatabaseSettings


class Settings(DatabaseSettings):
    """Everything the accounts service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="ACCOUNTS_", extra="ignore")

    port: int = 8001
    # signing keys: a JWKS file with private keys; created on first run when allowed
    signing_keys_file: Path | None = None
    generate_signing_keys: bool = True
    access_token_minutes: int = 15
    # a rotated signing key is published this long before it signs, so that every verifier's
    # cached key set (the gateway's and credits' JWKS TTL, 300 s) holds it by then
    key_publish_lead_seconds: int = 600
    refresh_token_days: int = 30
    # personal data keys (AES-256-GCM and the blind-index HMAC key), created on first run if allowed
    pii_keys_file: Path | None = None
    generate_pii_keys: bool = True
    # the division code learning account numbers start with
    district_code: str = "410711"
    # sign-in throttling: failures before a lock, and how long the lock lasts
    max_failed_sign_ins: int = 5
    lockout_minutes: int = 15

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'accounts.sqlite3'}"
        if self.pii_keys_file is None:
            self.pii_keys_file = self.data_dir / "keys" / "accounts-pii.json"
        if self.signing_keys_file is None:
            self.signing_keys_file = self.data_dir / "keys" / "accounts-signing.jwks.json"
        return self

    @property
    def pii_file(self) -> Path:
        """The PII key file (always set after validation)."""
        assert self.pii_keys_file is not None
        return self.pii_keys_file

    @property
    def keys_file(self) -> Path:
        """The signing key file (always set after validation)."""
        assert self.signing_keys_file is not None
        return self.signing_keys_file
