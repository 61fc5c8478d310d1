"""The accounts service app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from accounts import SERVICE_ROOT
from accounts.audit.models import TABLES as AUDIT_TABLES
from accounts.auth.router import router as auth_router
from accounts.config import Settings
from accounts.db import VERSION_TABLE
from accounts.keys import MISSING_HINT
from accounts.learners.router import router as learners_router
from accounts.learners.statistics import router as statistics_router
from accounts.network.router import router as network_router
from accounts.partners.router import router as partners_router
from accounts.pii import load_pii_cipher
from accounts.staff.router import router as staff_router
from kernel.app import build_service_app
from kernel.auditapi import audit_router
from kernel.db import make_engine, make_sessionmaker
from kernel.health import database_readiness
from kernel.keyring import RingKeySource, load_keyring
from kernel.logs import configure_logging
from kernel.tokens import TokenSigner, TokenVerifier


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the accounts app; settings come from the environment unless given."""
    settings = settings or Settings()
    configure_logging("accounts", settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        keyring = load_keyring(
            settings.keys_file,
            create=settings.generate_signing_keys,
            missing_hint=MISSING_HINT,
        )
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.keyring = keyring
        app.state.pii = load_pii_cipher(settings.pii_file, create=settings.generate_pii_keys)
        # credits signs its calls to the internal routes with it (kernel.servicecalls)
        app.state.service_key = settings.service_key(create=settings.generate_signing_keys)
        # both follow the key file, so `accounts-admin rotate-keys` needs no restart
        app.state.signer = TokenSigner(
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            current=lambda now: keyring.refreshed().signing_key_at(now),
        )
        app.state.token_verifier = TokenVerifier(
            RingKeySource(keyring),
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            leeway_seconds=settings.token_leeway_seconds,
        )
        try:
            yield
        finally:
            await engine.dispose()

    return build_service_app(
        title="Muye accounts service",
        version="0.1.0",
        description="Learning accounts, the school network, staff, partner clients, sign-in.",
        lifespan=lifespan,
        readiness=database_readiness(SERVICE_ROOT, VERSION_TABLE),
        routers=[
            auth_router,
            network_router,
            learners_router,
            partners_router,
            staff_router,
            statistics_router,
            audit_router(AUDIT_TABLES, service="accounts"),
        ],
    )
