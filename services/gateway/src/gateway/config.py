"""Settings of the gateway (environment prefix ``GATEWAY_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings


class Settings(ServiceSettings):
    """Everything the gateway reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    port: int = 8000
    accounts_url: str = "http://127.0.0.1:8001"
    credits_url: str = "http://127.0.0.1:8002"
    upstream_timeout_seconds: float = 10.0
    upstream_connect_timeout_seconds: float = 2.0
    # connections kept to each service; requests beyond wait for one (see main.lifespan)
    upstream_connections: int = 16
    jwks_ttl_seconds: float = 300.0
    max_body_bytes: int = 2_000_000
    retry_after_seconds: int = 5
    # rate limits ("N/second|minute|hour"); shared through Redis when redis_url is set
    redis_url: str | None = None
    rate_limit_per_ip: str = "600/minute"
    rate_limit_per_client: str = "1200/minute"
    rate_limit_sign_in: str = "30/minute"
    rate_limit_key_prefix: str = "muye-gateway"
    # a resident's own portfolio is kept this long (0: never kept), so many; see portfoliocache
    portfolio_cache_seconds: float = 5.0
    portfolio_cache_entries: int = 2_000
    # who may read /metrics (Prometheus scrapes from inside)
    metrics_allow_from: list[str] = ["127.0.0.1", "::1"]

    @property
    def upstreams(self) -> dict[str, str]:
        """Base URL of each service the gateway routes to."""
        return {"accounts": self.accounts_url, "credits": self.credits_url}

    @property
    def jwks_url(self) -> str:
        """Where the token issuer publishes its keys."""
        return self.accounts_url.rstrip("/") + "/.well-known/jwks.json"
