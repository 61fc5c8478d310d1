"""Settings of the credits service (environment prefix ``CREDITS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
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
    # how long after a session ends its code still checks a resident out (not in); the minutes
    # stop at the session's end
    checkout_grace_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # how often the ledger's outbox worker looks for unsettled records (0: never; then
    # POST /api/v1/ledger/settlements or `credits-admin accrue` settles them)
    accrual_interval_seconds: float = 2.0
    # statistics: a report whose figures took this long to read is kept, and answered again
    # from what was read (with its time, ``as_of``) for ``statistics_keep_seconds`` (0: never)
    statistics_keep_after_seconds: float = 2.0
    statistics_keep_seconds: float = 600.0
    # the largest evidence file a certification accepts (kept under data_dir/evidence)
    evidence_max_bytes: int = 5_000_000
    # the public address of the system (the gateway): verification pages, status lists and
    # the credential keys are published under it, and the transcript's QR code opens it
    public_url: str = "http://127.0.0.1:8000"
    # who issues transcripts and credentials: the district community college
    credential_issuer_id: str = "https://muye.example.org/college"
    credential_issuer_name: str = "牧野区社区学院 Muye District Community College"
    # the college's credential-signing keys (never the access tokens'); created on first run
    credential_keys_file: Path | None = None
    generate_credential_keys: bool = True
    # transcripts and CLRs are snapshots: how long one is valid after it is issued
    snapshot_valid_days: int = 365
    # the TrueType CJK font the PDF transcript embeds (installed by `make setup`)
    transcript_font_file: Path = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
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
        if self.credential_keys_file is None:
            self.credential_keys_file = (
                self.data_dir / "keys" / "credits-credential-signing.jwks.json"
            )
        self.public_url = self.public_url.rstrip("/")
        return self

    @property
    def checkin_key(self) -> Path:
        """The check-in key file (always set after validation)."""
        assert self.checkin_key_file is not None
        return self.checkin_key_file

    @property
    def credential_keys(self) -> Path:
        """The credential-signing key file (always set after validation)."""
        assert self.credential_keys_file is not None
        return self.credential_keys_file
