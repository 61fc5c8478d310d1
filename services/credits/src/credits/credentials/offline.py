"""Verifying a credential with nothing but the issuer's public keys (and its status list).

Used by ``credits-admin verify-credential``: every input is a file, a literal or a URL, so a
verifier can work offline from files fetched once (the key set, the status list).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from credits.credentials import statuslist, vcjwt


class SourceUnreadable(ValueError):
    """A file or URL that cannot be read."""


def load_text(source: str) -> str:
    """The text of a URL (http/https), a file, or ``source`` itself when it is neither."""
    if source.startswith(("http://", "https://")):
        try:
            response = httpx.get(source, timeout=10.0, follow_redirects=False)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise SourceUnreadable(f"{source}: {exc}") from None
        return response.text.strip()
    try:
        if Path(source).is_file():
            return Path(source).read_text().strip()
    except OSError:  # too long for a file name: a literal
        pass
    return source.strip()


def _status_lookup(
    token: str | None, keys: dict[str, Any], issuer: str, now: datetime | None
) -> tuple[vcjwt.StatusLookup | None, str | None]:
    """A lookup over a verified status list credential, or None and why it cannot be used."""
    if token is None:
        return None, None
    listed = vcjwt.verify(token, keys=keys, issuer=issuer, now=now)
    if not listed.valid or listed.credential is None:
        return None, f"status list not usable: {listed.status} ({listed.reason})"
    if "BitstringStatusListCredential" not in listed.credential.get("type", []):
        return None, "status list not usable: not a BitstringStatusListCredential"
    subject = listed.credential.get("credentialSubject", {})
    try:
        bits = statuslist.decode(str(subject.get("encodedList", "")))
    except statuslist.StatusListError as exc:
        return None, f"status list not usable: {exc}"
    url = listed.credential.get("id")

    def lookup(list_url: str, index: int) -> bool | None:
        if list_url != url or index >= len(bits) * 8:
            return None
        return statuslist.is_set(bits, index)

    return lookup, None


def verify(
    credential: str,
    *,
    jwks: dict[str, Any],
    issuer: str,
    status_list: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The verdict on ``credential`` as a JSON-ready dict."""
    keys = vcjwt.public_keys(jwks)
    lookup, problem = _status_lookup(status_list, keys, issuer, now)
    verdict = vcjwt.verify(credential, keys=keys, issuer=issuer, now=now, status=lookup)
    result: dict[str, Any] = {
        "verdict": verdict.status,
        "valid": verdict.valid,
        "reason": problem if problem and verdict.status == vcjwt.STATUS_UNKNOWN else verdict.reason,
    }
    if verdict.credential is not None:
        result["credential_id"] = verdict.credential.get("id")
        result["name"] = verdict.credential.get("name")
        result["valid_from"] = verdict.credential.get("validFrom")
        result["valid_until"] = verdict.credential.get("validUntil")
    return result


def main(credential: str, keys: str, issuer: str, status_list: str | None) -> int:
    """Print the verdict as JSON; 0 when valid, 1 when not, 2 when an input cannot be read."""
    try:
        token = load_text(credential)
        jwks = json.loads(load_text(keys))
        listed = load_text(status_list) if status_list else None
    except (SourceUnreadable, ValueError) as exc:
        print(json.dumps({"error": str(exc)}, ensure_ascii=False))  # noqa: T201
        return 2
    result = verify(token, jwks=jwks, issuer=issuer, status_list=listed)
    print(json.dumps(result, ensure_ascii=False, indent=1))  # noqa: T201
    return 0 if result["valid"] else 1
