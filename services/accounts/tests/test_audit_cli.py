"""accounts-admin verify-audit and purge-audit, on the embedded default (a SQLite file)."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from accounts.cli import main
from accounts.network.service import muye_network


def test_verify_names_a_tampered_entry_and_purge_refuses_recent_or_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACCOUNTS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ACCOUNTS_DATABASE_URL", raising=False)
    assert main(["migrate"]) == 0
    assert main(["seed-demo"]) == 0  # the network's levels and units and the demo staff user
    network = muye_network()
    seeded = len(network["levels"]) + len(network["units"]) + 1
    capsys.readouterr()
    assert main(["verify-audit"]) == 0
    assert f"audit chain ok: {seeded} entries checked" in capsys.readouterr().out

    recent = (datetime.now(UTC) - timedelta(days=179)).date().isoformat()
    assert main(["purge-audit", "--before", recent]) == 2
    refused = capsys.readouterr().err
    assert "refused" in refused and "at least 180 days" in refused
    assert main(["verify-audit"]) == 0  # the refused purge is on record, and the chain holds
    # the verification and the refused purge are entries too
    assert f"audit chain ok: {seeded + 2} entries checked" in capsys.readouterr().out
    assert main(["purge-audit", "--before", "yesterday"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert main(["purge-audit", "--before", "2020-01-01"]) == 0
    assert "purged 0 audit entries" in capsys.readouterr().out

    assert main(["audit-head"]) == 0
    head = capsys.readouterr().out.strip()
    assert re.fullmatch(r"\d+:[0-9a-f]{64}", head)
    assert main(["verify-audit", "--anchored", head]) == 0
    assert main(["verify-audit", "--anchored", "1:not-a-hash"]) == 2
    assert "SEQ:HASH" in capsys.readouterr().err

    with sqlite3.connect(tmp_path / "accounts.sqlite3") as db:
        db.execute("DROP TRIGGER audit_entry_no_update")  # as an intruder with the file would
        db.execute("UPDATE audit_entry SET actor = 'someone else' WHERE seq = 1")
    assert main(["verify-audit"]) == 1
    assert "audit chain BROKEN: altered at entry 1" in capsys.readouterr().err
    assert main(["purge-audit", "--before", "2020-01-01"]) == 2
    assert "does not verify" in capsys.readouterr().err
