"""docker-compose.yml checked against the services' real settings (no Docker engine here)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from accounts.config import Settings as AccountsSettings
from credits.config import Settings as CreditsSettings
from devstack.stack import ROOT
from gateway.config import Settings as GatewaySettings

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SETTINGS = {"accounts": AccountsSettings, "credits": CreditsSettings, "gateway": GatewaySettings}
PORTS = {"accounts": 8001, "credits": 8002, "gateway": 8000}


def _substituted(value: str) -> str:
    # ${VAR:?msg} must be supplied by the operator; ${VAR:-default} takes its default
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "supplied", value)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_environment_names_only_real_settings_and_loads(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_class = SETTINGS[name]
    prefix = settings_class.model_config["env_prefix"]
    environment = SERVICES[name]["environment"]
    fields = {f.upper() for f in settings_class.model_fields}
    for key in environment:
        assert key.startswith(prefix), f"{name}: {key} lacks the {prefix} prefix"
        assert key[len(prefix) :] in fields, f"{name}: {key} is not a setting"
    for key in list(__import__("os").environ):
        if key.startswith(prefix):
            monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, _substituted(str(value)))
    settings = settings_class()
    assert settings.port == PORTS[name]
    if name != "gateway":
        assert settings.database_url.startswith("postgresql+asyncpg://muye:supplied@postgres:5432/")
        assert settings.database_url.endswith("/" + name)  # one database per service


def test_databases_are_created_for_each_service() -> None:
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE accounts;" in init and "CREATE DATABASE credits;" in init
    mounted = SERVICES["postgres"]["volumes"][1].split(":")[0]
    assert (ROOT / mounted).resolve() == (ROOT / "deploy" / "postgres-init.sql").resolve()


def test_only_the_gateway_publishes_a_port() -> None:
    published = {name for name, svc in SERVICES.items() if svc.get("ports")}
    assert published == {"gateway"}
    assert SERVICES["gateway"]["ports"] == [f"{PORTS['gateway']}:{PORTS['gateway']}"]


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_health_check_probes_readyz_on_the_service_port(name: str) -> None:
    probe = " ".join(SERVICES[name]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{PORTS[name]}/readyz" in probe
    assert f"--port {PORTS[name]}" in SERVICES[name]["command"]


@pytest.mark.parametrize(
    ("name", "admin"), [("accounts", "accounts-admin"), ("credits", "credits-admin")]
)
def test_migrations_run_before_the_server_starts(name: str, admin: str) -> None:
    command = SERVICES[name]["command"]
    assert command.index(f"{admin} migrate") < command.index("uvicorn")
    assert SERVICES[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_gateway_routes_to_the_services_it_waits_for() -> None:
    env = SERVICES["gateway"]["environment"]
    assert env["GATEWAY_ACCOUNTS_URL"] == f"http://accounts:{PORTS['accounts']}"
    assert env["GATEWAY_CREDITS_URL"] == f"http://credits:{PORTS['credits']}"
    assert set(SERVICES["gateway"]["depends_on"]) == {"accounts", "credits"}
    assert SERVICES["credits"]["environment"]["CREDITS_JWKS_URL"].startswith(
        "http://accounts:8001/"
    )


def test_build_context_and_entry_points_exist() -> None:
    for name in SETTINGS:
        build = SERVICES[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for path in ("libs", "services", "uv.lock"):
        assert path in dockerfile and (ROOT / path).exists()
    scripts = (ROOT / "services/accounts/pyproject.toml").read_text() + (
        ROOT / "services/credits/pyproject.toml"
    ).read_text()
    assert 'accounts-admin = "accounts.cli:main"' in scripts
    assert 'credits-admin = "credits.cli:main"' in scripts


def test_issuer_and_audience_agree_across_services() -> None:
    for setting in ("TOKEN_ISSUER", "TOKEN_AUDIENCE"):
        values = {
            _substituted(SERVICES[n]["environment"][f"{n.upper()}_{setting}"]) for n in SETTINGS
        }
        assert len(values) == 1, f"{setting} differs between services: {values}"


def test_accounts_and_credits_share_one_service_call_key_the_operator_supplies() -> None:
    keys = {
        name: SERVICES[name]["environment"][f"{name.upper()}_SERVICE_CALL_KEY"]
        for name in ("accounts", "credits")
    }
    assert keys["accounts"] == keys["credits"]
    assert keys["accounts"].startswith("${SERVICE_CALL_KEY:?")  # no default: a secret
