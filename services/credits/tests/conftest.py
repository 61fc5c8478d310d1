"""Credits service tests: every test runs on PostgreSQL and on SQLite, rolled back after."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from jose import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from credits import SERVICE_ROOT
from credits.cli import seed_reference_data
from credits.config import Settings
from credits.main import create_app
from credits.records.models import LearningRecord
from kernel import servicecalls
from kernel.tokens import StaticKeySource, TokenSigner, TokenVerifier, keys_from_jwks
from testkit.apps import rolled_back_client, running
from testkit.fixtures import BACKENDS, migrated_database
from testkit.http import bearer
from testkit.tokens import private_jwk, public_jwk


async def _seed(session: AsyncSession) -> None:
    await seed_reference_data(session)


@pytest.fixture(scope="session", params=BACKENDS)
def credits_db(request: pytest.FixtureRequest) -> str:
    """A migrated credits database with the shipped reference data."""
    return migrated_database(
        request, backend=request.param, service="credits", service_root=SERVICE_ROOT, seed=_seed
    )


@pytest.fixture(scope="session")
async def credits_app(
    credits_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    data_dir: Path = tmp_path_factory.mktemp("credits-data")
    # no background worker: each test settles what it needs, inside its rolled-back transaction
    settings = Settings(
        database_url=credits_db,
        data_dir=data_dir,
        log_level="WARNING",
        accrual_interval_seconds=0,
    )
    async with running(create_app(settings)) as app:
        yield app


@pytest.fixture
async def session_client(
    credits_app: FastAPI,
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncSession]]:
    """A rolled-back client and the session its requests use (to arrange data directly)."""
    async with rolled_back_client(credits_app) as pair:
        yield pair


@pytest.fixture
def client(session_client: tuple[httpx.AsyncClient, AsyncSession]) -> httpx.AsyncClient:
    return session_client[0]


ISSUER_KEY = private_jwk("test-issuer")
SERVICE_KEY = bytes(range(32))  # the service call key the stand-in accounts checks
# learning accounts as the accounts service would report them: number -> (id, status)
LEARNERS: dict[str, tuple[uuid.UUID, str]] = {}
# learner id -> residence unit path, as the accounts service knows it
LEARNER_HOMES: dict[str, str] = {}
_numbers = itertools.count(1)


def new_learner(status: str = "active") -> tuple[str, uuid.UUID]:
    """A learning account the faked accounts service knows: its number and id."""
    number = f"4107118{next(_numbers):07d}"
    LEARNERS[number] = (uuid.uuid4(), status)
    return number, LEARNERS[number][0]


# learner id -> the account as the accounts service shows it (name, masked ID, number)
PROFILES: dict[str, dict[str, str]] = {}


def profile_of(learner: str) -> dict[str, str]:
    """The learner's account as accounts would answer, a made-up one unless arranged."""
    return PROFILES.get(learner) or {
        "id": learner,
        "name": "测试居民",
        "id_number_masked": "410711********0012",
        "account_number": "MY4107110000001",
    }


UNIT_PATHS = {
    "410711": "/410711/",
    "410711100": "/410711/410711100/",
    "410711101": "/410711/410711101/",
    # a town only the credit audit tests use, so committed rows of other tests stay out of it
    "410711102": "/410711/410711102/",
    "410711100201": "/410711/410711100/410711100201/",
}
# what accounts says of a unit besides its path (statistics), and of its residents' accounts
UNIT_FACTS: dict[str, dict[str, object]] = {
    "410711": {"name": "牧野区社区学院", "population": 1000, "is_demo": True},
    "410711100": {"name": "王村镇社区教育学校", "population": 400, "is_demo": True},
    "410711101": {"name": "牧野镇社区教育学校", "population": 500, "is_demo": True},
    "410711100201": {"name": "测试学习点", "population": None, "is_demo": True},
}
REGISTRATIONS: dict[str, dict[str, object]] = {}
# learner id -> the groups accounts has for them (the group lookup answers from this)
LEARNER_GROUPS: dict[str, list[str]] = {}
GROUP_CODES = (
    "elderly", "youth", "disabled", "unemployed", "migrant_workers", "rural_residents",
    "veterans", "left_behind",
)  # fmt: skip
# the number of learners each group lookup named, in order (the test reading it clears it)
GROUP_LOOKUPS: list[int] = []
# paths the faked accounts service cannot be reached on, or answers with an error status
# (a test adds and removes them)
UNREACHABLE: set[str] = set()
FAILING: dict[str, int] = {}


@pytest.fixture(scope="session")
def issue_token(credits_app: FastAPI):  # type: ignore[no-untyped-def]
    """Sign tokens as the accounts service would (see :func:`install_test_neighbours`)."""
    return install_test_neighbours(credits_app)


def install_test_neighbours(credits_app: FastAPI):  # type: ignore[no-untyped-def]
    """Sign tokens as the accounts service would; the credits app trusts this test issuer.

    The neighbour (accounts) is replaced at this level only: its keys by a test key and its
    public unit API by a fixed table. The end-to-end tests use the real service.
    """
    settings = credits_app.state.settings
    credits_app.state.service_key = SERVICE_KEY  # the key accounts would share with it
    credits_app.state.token_verifier = TokenVerifier(
        StaticKeySource(keys_from_jwks({"keys": [public_jwk(ISSUER_KEY)]})),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )

    async def units(request: httpx.Request) -> httpx.Response:
        if request.url.path in UNREACHABLE:
            raise httpx.ConnectError("accounts is down", request=request)
        if request.url.path in FAILING:
            return httpx.Response(FAILING[request.url.path], json={"type": "failed"})
        if request.url.path == "/api/v1/learner-groups/lookup":
            # as accounts answers: signed by credits, reading staff of the unit; places per
            # group, every group
            signature = request.headers.get(servicecalls.HEADER)
            if not servicecalls.verify(
                SERVICE_KEY, signature, request.method, request.url.path, request.content
            ):
                return httpx.Response(403, json={"type": "service-signature-required"})
            body = json.loads(request.content)
            token = request.headers["authorization"].split()[-1]
            claims = jwt.get_unverified_claims(token)
            if not UNIT_PATHS.get(body["unit"], "-").startswith(claims.get("unit_path", "-")):
                return httpx.Response(403, json={"type": "forbidden"})
            GROUP_LOOKUPS.append(len(body["learners"]))
            places: dict[str, list[int]] = {g: [] for g in GROUP_CODES}
            for n, learner in enumerate(body["learners"]):
                for group in LEARNER_GROUPS.get(learner, []):
                    places[group].append(n)
            # residents: those whose home (LEARNER_HOMES) is the unit or under it
            under = UNIT_PATHS[body["unit"]]
            residents = {who for who, home in LEARNER_HOMES.items() if home.startswith(under)}
            return httpx.Response(
                200,
                json={
                    "unit": body["unit"],
                    "asked": len(body["learners"]),
                    "found": sum(1 for learner in body["learners"] if learner in LEARNER_GROUPS),
                    "groups": places,
                    "listed_residents": len(residents.intersection(body["learners"])),
                    "other_residents": sorted(residents.difference(body["learners"])),
                },
            )
        if request.method == "GET" and request.url.path == "/api/v1/me/account":
            token = request.headers["authorization"].split()[-1]
            claims = jwt.get_unverified_claims(token)
            if claims.get("kind") != "resident":
                return httpx.Response(404, json={"type": "not-found"})
            return httpx.Response(200, json=profile_of(str(claims["sub"])))
        if request.method == "GET" and request.url.path.startswith("/api/v1/learning-accounts/"):
            # the accounts service answers 200 to staff covering the learner's residence
            learner = request.url.path.rsplit("/", 1)[-1]
            token = request.headers["authorization"].split()[-1]
            claims = jwt.get_unverified_claims(token)
            home = LEARNER_HOMES.get(learner)
            covered = home is not None and home.startswith(claims.get("unit_path", "-"))
            residence = home.rstrip("/").rsplit("/", 1)[-1] if home else None
            return httpx.Response(
                200 if covered else 404,
                json={**profile_of(learner), "id": learner, "residence_unit": residence},
            )
        if request.url.path == "/api/v1/learning-accounts/lookup":
            numbers = json.loads(request.content)["account_numbers"]
            found = [
                {"account_number": n, "id": str(LEARNERS[n][0]), "status": LEARNERS[n][1]}
                for n in numbers
                if n in LEARNERS
            ]
            return httpx.Response(200, json={"found": found})
        if request.url.path.endswith("/registrations"):
            key = request.url.path.split("/")[-2]
            token = request.headers["authorization"].split()[-1]
            claims = jwt.get_unverified_claims(token)
            if not UNIT_PATHS.get(key, "-").startswith(claims.get("unit_path", "-")):
                return httpx.Response(403, json={"type": "forbidden"})
            empty = {"registered": 0, "active": 0, "registered_in_period": 0, "by_group": {}}
            return httpx.Response(200, json=REGISTRATIONS.get(key, empty))
        key = request.url.path.rsplit("/", 1)[-1]
        homes = [h for h in LEARNER_HOMES.values() if h.endswith(f"/{key}/")]
        path = UNIT_PATHS.get(key) or (homes[0] if homes else None)
        if path is None:
            return httpx.Response(404, json={"type": "not-found"})
        return httpx.Response(200, json={"key": key, "path": path, **UNIT_FACTS.get(key, {})})

    credits_app.state.accounts = httpx.AsyncClient(
        transport=httpx.MockTransport(units), base_url="http://accounts"
    )
    signer = TokenSigner(ISSUER_KEY, issuer=settings.token_issuer, audience=settings.token_audience)

    def make(
        kind: str,
        *,
        role: str | None = None,
        unit: str = "410711",
        subject: str | None = None,
        client_id: str | None = None,
    ) -> str:
        roles = [role] if role else ([kind] if kind in ("resident", "partner") else [])
        extra = {"unit_path": UNIT_PATHS.get(unit, "/410711/")}
        if client_id:
            extra["client_id"] = client_id
        subject = subject or str(uuid.uuid4())
        if kind == "resident":  # accounts signs a resident in with the residence it knows
            LEARNER_HOMES.setdefault(subject, extra["unit_path"])
        return signer.sign(
            subject=subject,
            kind=kind,
            lifetime_seconds=600,
            roles=roles,
            scopes=["records:write"] if kind == "partner" else [],
            unit=unit,
            extra=extra,
        )

    return make


class Factory:
    """Arrange activities and records for a test, through the API or straight in the DB."""

    def __init__(self, client: httpx.AsyncClient, db: AsyncSession, issue_token) -> None:  # type: ignore[no-untyped-def]
        self.client, self.db, self.issue_token = client, db, issue_token

    async def activity(
        self,
        *,
        unit: str = "410711100",
        kind: str = "course",
        category: str = "law",
        mode: str = "offline",
        sessions: int = 0,
        start: datetime = datetime(2026, 3, 2, 1, tzinfo=UTC),
        partner: str | None = None,
    ) -> tuple[uuid.UUID, list[uuid.UUID]]:
        """An activity hosted by ``unit`` with weekly two-hour sessions."""
        staff = self.issue_token("staff", role="college_staff", unit="410711")
        body: dict[str, object] = {
            "title": "测试课程",
            "kind": kind,
            "category": category,
            "mode": mode,
            "host_unit": unit,
            "sessions": [
                {
                    "starts_at": (start + timedelta(days=7 * n)).isoformat(),
                    "ends_at": (start + timedelta(days=7 * n, hours=2)).isoformat(),
                }
                for n in range(sessions)
            ],
        }
        if partner:
            body["partner"] = partner
        response = await self.client.post(
            "/api/v1/activities", json=body, headers={"Authorization": f"Bearer {staff}"}
        )
        assert response.status_code == 201, response.text
        data = response.json()
        return uuid.UUID(data["id"]), [uuid.UUID(s["id"]) for s in data["sessions"]]

    async def records(
        self,
        learner: uuid.UUID,
        activity: uuid.UUID,
        *,
        count: int = 1,
        minutes: int = 600,
        source: str = "staff_entry",
        status: str = "pending",
        start: datetime = datetime(2026, 3, 2, 1, tzinfo=UTC),
        category: str = "law",
        mode: str = "offline",
        host_path: str = "/410711/410711100/",
        sessions: list[uuid.UUID] | None = None,
        every: timedelta = timedelta(days=1),
    ) -> list[int]:
        """``count`` records of the learner, one per ``every``, straight into the database."""
        made = []
        for n in range(count):
            begins = start + every * n
            record = LearningRecord(
                learner_id=learner,
                activity_id=activity,
                session_id=sessions[n] if sessions else None,
                category_code=category,
                mode=mode,
                host_unit_path=host_path,
                source=source,
                started_at=begins,
                ended_at=begins + timedelta(minutes=max(minutes, 1)),
                minutes=minutes,
                status=status,
                status_changed_by="test",
            )
            self.db.add(record)
            await self.db.flush()
            assert record.id is not None
            made.append(record.id)
        await self.db.commit()
        return made


@pytest.fixture
def factory(session_client: tuple[httpx.AsyncClient, AsyncSession], issue_token) -> Factory:  # type: ignore[no-untyped-def]
    return Factory(session_client[0], session_client[1], issue_token)


EVIDENCE_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


# a resident's certification as the tests submit it, unless they say otherwise
CERTIFICATION = {
    "outcome_type": "vocational_qualification",
    "level": "4",
    "title": "中式烹调师（四级）",
    "issuer": "新乡市人力资源和社会保障局",
    "issued_on": "2026-06-30",
}


async def submitted_with_evidence(client, resident: str, **fields: object) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A certification of the resident (``fields`` replace the default's) with one evidence
    file, a scan of its own (the same file twice is one certificate): its id and the file's."""
    body = {**CERTIFICATION, **fields}
    submitted = await client.post("/api/v1/certifications", json=body, headers=bearer(resident))
    assert submitted.status_code == 201, submitted.text
    cid = submitted.json()["id"]
    uploaded = await client.post(
        f"/api/v1/certifications/{cid}/evidence",
        files={"file": ("证书.png", EVIDENCE_PNG + uuid.UUID(cid).bytes, "image/png")},
        headers=bearer(resident),
    )
    assert uploaded.status_code == 201, uploaded.text
    return str(cid), str(uploaded.json()["id"])


async def certified(client, issue_token, resident: str, **fields: object) -> str:  # type: ignore[no-untyped-def]
    """A certification of the resident, submitted with evidence
    (:func:`submitted_with_evidence`) and approved by the college; its id."""
    cid, _ = await submitted_with_evidence(client, resident, **fields)
    college = issue_token("staff", role="college_staff", unit="410711")
    reviewed = await client.post(
        f"/api/v1/certifications/{cid}/review",
        json={"decision": "approve", "reason": "证书真实有效"},
        headers=bearer(college),
    )
    assert reviewed.status_code == 200, reviewed.text
    return str(cid)


async def arrived_earlier(
    db: AsyncSession, session_id: str, learner_id: uuid.UUID, minutes: int
) -> None:
    """Move a QR check-in ``minutes`` into the past: a check-out counts whole minutes, so a
    test that checks out at once would be refused (nothing attended yet)."""
    from sqlalchemy import select

    from credits.records.models import Attendance

    attendance = (
        await db.execute(
            select(Attendance).where(
                Attendance.session_id == uuid.UUID(session_id),  # type: ignore[arg-type]
                Attendance.learner_id == learner_id,  # type: ignore[arg-type]
            )
        )
    ).scalar_one()
    attendance.checked_in_at -= timedelta(minutes=minutes)
    await db.commit()


async def audit_digests(
    db: AsyncSession, action: str, target_id: str
) -> list[tuple[str | None, str | None]]:
    """(before digest, after digest) of each audit entry of ``action`` on ``target_id``, in
    order."""
    from sqlalchemy import text

    rows = await db.execute(
        text(
            "SELECT before_digest, after_digest FROM audit_entry"
            " WHERE action = :a AND target_id = :t ORDER BY seq"
        ),
        {"a": action, "t": target_id},
    )
    return [(before, after) for before, after in rows.all()]


def state_digest(state: dict[str, object]) -> str | None:
    """The digest an audit entry keeps of a state given as a dict."""
    from credits.audit.service import snapshot
    from kernel.auditstore import digest

    return digest(snapshot(state))
