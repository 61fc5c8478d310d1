"""Evidence files on disk: type sniffed from content, size capped, stored by SHA-256.

A file's name on disk is its digest, never anything the uploader chose, so no upload can
reach outside the evidence folder; files are written owner-only and atomically (temp + rename).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from kernel.text import without_control

# content signatures of the types we accept (magic numbers), never the declared type
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


class EvidenceRejected(ValueError):
    """The file is not one we keep; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sniff(content: bytes) -> str | None:
    """The media type the content really has, if it is one we accept."""
    for signature, media_type in SIGNATURES:
        if content.startswith(signature):
            return media_type
    return None


def safe_name(name: str | None) -> str:
    """The uploader's file name for display only.

    No folders, no control or format characters (a direction override could disguise the
    name's extension).
    """
    base = (name or "evidence").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = without_control(base).strip() or "evidence"
    return cleaned[:120]


def check(content: bytes, *, max_bytes: int) -> str:
    """The media type of acceptable evidence, or raise :class:`EvidenceRejected`."""
    if not content:
        raise EvidenceRejected("empty file")
    if len(content) > max_bytes:
        raise EvidenceRejected(f"larger than {max_bytes} bytes")
    media_type = sniff(content)
    if media_type is None:
        raise EvidenceRejected("not a PDF, PNG or JPEG file")
    return media_type


def digest_of(content: bytes) -> str:
    """The name a file is stored by: the hex SHA-256 of its content."""
    return hashlib.sha256(content).hexdigest()


def store(folder: Path, content: bytes) -> str:
    """Write ``content`` under ``folder`` by its SHA-256 (once); return the digest."""
    digest = digest_of(content)
    target = folder / digest[:2] / digest
    if target.exists():
        return digest
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return digest


def path_of(folder: Path, digest: str) -> Path:
    """Where the file with ``digest`` is kept (digests are hex, checked here)."""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError("not a SHA-256 digest")
    return folder / digest[:2] / digest
