"""Access tokens: the one place that signs and verifies JWTs (python-jose behind our own API).

Every check a bearer token must pass lives here, so the gateway and the services behind it
verify alike: length, header shape, an explicit algorithm allow-list given as a list, a known
``kid`` from our own key set (``jku``, ``x5u`` and ``jwk`` headers are never used to find a key),
signature, ``typ``, and the registered claims ``exp``, ``iat``, ``nbf``, ``iss``, ``aud``, ``sub``.
Any failure, JOSEError and JWKError included, is a 401 :class:`InvalidToken`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from jose import jwk, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from kernel.problems import PROBLEMS, ServiceUnavailable, Unauthorized

ALLOWED_ALGORITHMS: tuple[str, ...] = ("RS256",)
ACCESS_TOKEN_TYP = "at+jwt"  # RFC 9068
MAX_TOKEN_BYTES = 8192


class InvalidToken(Unauthorized):
    """The bearer token is missing, malformed, forged, expired or not meant for us."""

    type = PROBLEMS + "invalid-token"
    title = "Invalid token"


class KeysUnavailable(ServiceUnavailable):
    """The verification keys cannot be had: we refuse rather than guess (fail closed)."""

    type = PROBLEMS + "token-keys-unavailable"
    title = "Token keys unavailable"


@dataclass(frozen=True)
class Principal:
    """Who is calling, as a verified token says."""

    subject: str
    kind: str
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    unit: str | None = None
    token_id: str | None = None
    expires_at: int = 0
    claims: Mapping[str, Any] = field(default_factory=dict)

    def has_role(self, *roles: str) -> bool:
        """Return whether the principal holds any of ``roles``."""
        return any(role in self.roles for role in roles)

    def has_scope(self, scope: str) -> bool:
        """Return whether the token grants ``scope``."""
        return scope in self.scopes


class KeySource(Protocol):
    """Where verification keys come from: a key object by ``kid``, or None when unknown."""

    async def get(self, kid: str) -> Key | None:
        """Return the key for ``kid``."""
        ...


def keys_from_jwks(jwks: Mapping[str, Any]) -> dict[str, Key]:
    """Parse a JWKS document into key objects by ``kid``, keeping only allowed RSA keys."""
    keys: dict[str, Key] = {}
    for entry in jwks.get("keys", []):
        kid = entry.get("kid")
        alg = entry.get("alg", "RS256")
        if not kid or alg not in ALLOWED_ALGORITHMS or entry.get("kty") != "RSA":
            continue
        if "d" in entry:  # never accept private material as a verification key
            continue
        keys[kid] = jwk.construct(dict(entry), algorithm=alg)
    return keys


class StaticKeySource:
    """Keys known up front (the issuer's own, or a test's)."""

    def __init__(self, keys: Mapping[str, Key]) -> None:
        self._keys = dict(keys)

    async def get(self, kid: str) -> Key | None:
        """Return the key for ``kid``."""
        return self._keys.get(kid)


class JwksKeySource:
    """Keys from the issuer's JWKS endpoint, cached with a TTL.

    An unknown ``kid`` triggers at most one refresh per ``min_refresh_seconds`` (counted from
    the last unknown-kid refresh or failed fetch, not the regular TTL fetch), shared by
    concurrent requests through one lock. When no fresh enough key set can be had, requests
    are refused with 503 (fail closed), never let through.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        ttl_seconds: float = 300.0,
        min_refresh_seconds: float = 30.0,
        max_stale_seconds: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._clock = clock  # a test's own clock makes the intervals exact, whatever the load
        self._url = url
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._max_stale = max_stale_seconds
        self._keys: dict[str, Key] = {}
        # never fetched: "long ago", whatever the monotonic clock's origin (it counts from
        # boot on Linux, so 0.0 would look fresh on a machine up for less than the TTL)
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        # unknown kids are throttled against unknown-kid fetches (and failures) only: a key
        # rotated just after the regular TTL fetch is fetched at once, not up to 30 s later
        self._kid_attempted_at = float("-inf")
        self._failed_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def _refresh(self, *, reason_kid: str | None) -> None:
        async with self._lock:
            now = self._clock()
            # someone else refreshed while we waited, or we tried too recently
            if reason_kid is not None and reason_kid in self._keys:
                return
            if reason_kid is None and now - self._fetched_at < self._ttl:
                return
            if reason_kid is None and now - self._attempted_at < self._min_refresh:
                return
            if reason_kid is not None and (
                now - self._kid_attempted_at < self._min_refresh
                or now - self._failed_at < self._min_refresh
            ):
                return
            self._attempted_at = now
            if reason_kid is not None:
                self._kid_attempted_at = now
            self.fetch_count += 1
            try:
                response = await self._client.get(self._url, timeout=5.0)
                response.raise_for_status()
                self._keys = keys_from_jwks(response.json())
                self._fetched_at = self._clock()
            except (httpx.HTTPError, ValueError, JOSEError):
                self._failed_at = now
                return

    async def get(self, kid: str) -> Key | None:
        """Return the key for ``kid``, refreshing the cached set when due."""
        if self._clock() - self._fetched_at >= self._ttl:
            await self._refresh(reason_kid=None)
        if self._clock() - self._fetched_at >= self._ttl + self._max_stale:
            raise KeysUnavailable(
                "The token signing keys cannot be fetched right now; try again shortly.",
                detail_zh="暂时无法获取令牌验证密钥，请稍后再试。",
            )
        key = self._keys.get(kid)
        if key is None:
            await self._refresh(reason_kid=kid)
            key = self._keys.get(kid)
        return key


def _invalid(reason: str) -> InvalidToken:
    return InvalidToken(
        f"The access token was rejected: {reason}.",
        detail_zh="访问令牌无效或已过期，请重新登录。",
        reason=reason,
    )


class TokenVerifier:
    """Verify access tokens against one issuer and audience.

    A token that verified is remembered (the exact token text, up to ``remembered`` of them)
    with the key object that verified it: a client sends the same token with every request for
    its lifetime, and parsing and checking it again costs more than the rest of a small
    request's routing. A remembered token is taken again only while it has not expired
    (``exp`` plus the same leeway) and its ``kid`` still gives that very key object from the
    key source, so a key withdrawn or replaced, or a refreshed key set, sends it through the
    full check again. Any other text, a single character changed included, is checked fully.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 30,
        algorithms: Sequence[str] = ALLOWED_ALGORITHMS,
        typ: str = ACCESS_TOKEN_TYP,
        remembered: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._algorithms = list(algorithms)
        self._typ = typ
        self._remembered = remembered
        self._clock = clock
        self._verified: dict[str, tuple[Principal, str, Key]] = {}

    async def verify(self, token: str) -> Principal:
        """Check ``token`` and return who it names, or raise :class:`InvalidToken`."""
        known = self._verified.get(token)
        if known is not None:
            principal, kid, key = known
            if (
                self._clock() <= principal.expires_at + self._leeway
                and await self._keys.get(kid) is key
            ):
                return principal
            self._verified.pop(token, None)
        principal, kid, key = await self._verify_fully(token)
        if self._remembered > 0:
            if len(self._verified) >= self._remembered:
                del self._verified[next(iter(self._verified))]  # the oldest goes first
            self._verified[token] = (principal, kid, key)
        return principal

    async def _verify_fully(self, token: str) -> tuple[Principal, str, Key]:
        if len(token) > MAX_TOKEN_BYTES:
            raise _invalid("token too large")
        if token.count(".") != 2:
            raise _invalid("not a compact JWS")
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise _invalid("malformed header") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise _invalid("algorithm not allowed")
        if header.get("typ") != self._typ:
            raise _invalid("wrong token type")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid("no key id")
        key = await self._keys.get(kid)
        if key is None:
            raise _invalid("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": True,
                    "require_iss": True,
                    "require_aud": True,
                    "require_jti": True,
                    "leeway": self._leeway,
                },
            )
        except JOSEError as exc:
            raise _invalid(_reason(exc)) from None
        except (ValueError, TypeError, KeyError):
            raise _invalid("malformed token") from None
        return _principal(claims), kid, key


def _reason(exc: JOSEError) -> str:
    text = str(exc).lower()
    if "expired" in text:
        return "token expired"
    if "before" in text or "nbf" in text:
        return "token not yet valid"
    if "audience" in text:
        return "wrong audience"
    if "issuer" in text:
        return "wrong issuer"
    if "signature" in text:
        return "bad signature"
    return "malformed token"


def _principal(claims: Mapping[str, Any]) -> Principal:
    kind = claims.get("kind")
    sub = claims.get("sub")
    if not isinstance(kind, str) or not isinstance(sub, str):
        raise _invalid("missing principal claims")
    roles = claims.get("roles") or []
    scope = claims.get("scope") or ""
    unit = claims.get("unit")
    if not isinstance(roles, list) or not isinstance(scope, str):
        raise _invalid("malformed principal claims")
    return Principal(
        subject=sub,
        kind=kind,
        roles=tuple(str(r) for r in roles),
        scopes=tuple(scope.split()),
        unit=unit if isinstance(unit, str) else None,
        token_id=str(claims.get("jti")),
        expires_at=int(claims.get("exp", 0)),
        claims=dict(claims),
    )


class TokenSigner:
    """Sign access tokens with the issuer's current private key.

    Given one private JWK, it signs with that key; given ``current`` (the private JWK that
    signs at a Unix time: a key ring's ``signing_key_at``), with whichever key that names at
    the moment of signing, so a rotation takes effect without a new signer.
    """

    def __init__(
        self,
        private_jwk: Mapping[str, Any] | None = None,
        *,
        issuer: str,
        audience: str,
        current: Callable[[float], Mapping[str, Any]] | None = None,
    ) -> None:
        if (private_jwk is None) == (current is None):
            raise ValueError("give either one private JWK or a current-key callable")
        if current is None:
            fixed = dict(private_jwk or {})

            def current(_now: float) -> Mapping[str, Any]:
                return fixed

        self._current = current
        self._keys: dict[str, Key] = {}
        self._issuer = issuer
        self._audience = audience

    def _key(self, now: float) -> tuple[str, Key]:
        entry = self._current(now)
        kid = str(entry["kid"])
        key = self._keys.get(kid)
        if key is None:
            key = self._keys[kid] = jwk.construct(dict(entry), algorithm="RS256")
        return kid, key

    @property
    def kid(self) -> str:
        """The key id stamped into the tokens this signer makes now."""
        return self._key(time.time())[0]

    def sign(
        self,
        *,
        subject: str,
        kind: str,
        lifetime_seconds: int,
        roles: Sequence[str] = (),
        scopes: Sequence[str] = (),
        unit: str | None = None,
        extra: Mapping[str, Any] | None = None,
        now: int | None = None,
    ) -> str:
        """Return a signed access token for ``subject``."""
        issued = int(time.time()) if now is None else now
        kid, key = self._key(issued)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime_seconds,
            "jti": uuid.uuid4().hex,
            "kind": kind,
            "roles": list(roles),
            "scope": " ".join(scopes),
        }
        if unit is not None:
            claims["unit"] = unit
        if extra:
            claims.update(extra)
        return str(
            jwt.encode(
                claims,
                key,
                algorithm="RS256",
                headers={"kid": kid, "typ": ACCESS_TOKEN_TYP},
            )
        )
