"""credits-admin verify-audit and purge-audit, on the embedded default (a SQLite file)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from credits.cli import main


def test_verify_and_purge_commands_keep_the_chain_and_refuse_recent_cut_offs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CREDITS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CREDITS_DATABASE_URL", raising=False)
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["verify-audit"]) == 0
    assert "audit chain ok: 0 entries checked" in capsys.readouterr().out
    assert main(["verify-audit"]) == 0  # the first verification is an entry of its own
    assert "audit chain ok: 1 entries checked" in capsys.readouterr().out
    assert main(["purge-audit", "--before", "2099-01-01"]) == 2
    assert "at least 180 days" in capsys.readouterr().err
    with sqlite3.connect(tmp_path / "credits.sqlite3") as db:
        db.execute("DROP TRIGGER audit_entry_no_delete")  # as an intruder with the file would
        db.execute("DELETE FROM audit_entry WHERE seq = 2")
    assert main(["verify-audit"]) == 1
    assert "audit chain BROKEN: removed at entry 2" in capsys.readouterr().err
