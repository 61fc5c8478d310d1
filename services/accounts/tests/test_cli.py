"""accounts-admin import-residents: the staff's command-line tool, on the embedded default."""

from __future__ import annotations

import csv
import getpass
import sqlite3
from pathlib import Path

import pytest

from accounts.cli import main
from testkit.people import id_number


def test_import_command_dry_runs_then_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACCOUNTS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ACCOUNTS_DATABASE_URL", raising=False)
    assert main(["migrate"]) == 0
    assert main(["seed-network"]) == 0
    capsys.readouterr()
    from accounts.network.service import muye_network

    village = next(u["key"] for u in muye_network()["units"] if u["level"] == "learning_point")
    town = next(u["parent"] for u in muye_network()["units"] if u["key"] == village)
    sheet = tmp_path / "居民.csv"
    with sheet.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["姓名", "身份证号", "村(社区)编码", "同意版本", "同意时间"])
        writer.writerow(["赵大娘", id_number(), village, "2026-01", "2026-10-01"])
        writer.writerow(["坏号", "410711199001010012", village, "2026-01", "2026-10-01"])
    assert main(["import-residents", str(sheet), "--unit", town]) == 1  # one bad row
    dry = capsys.readouterr()
    assert "row 3: id_number: 身份证号码校验位错误" in dry.out
    assert "would create 1" in dry.out and "dry run" in dry.out
    assert main(["import-residents", str(sheet), "--unit", town, "--commit"]) == 1
    assert "created 1" in capsys.readouterr().out
    assert main(["import-residents", str(sheet), "--unit", town, "--commit"]) == 1
    assert "created 0, updated 0, unchanged 1" in capsys.readouterr().out


def test_staff_made_from_the_command_line_are_audited_under_the_os_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trail names who ran the command (cli:<user>), as the import does, not a bare
    "cli" that every operator shares."""
    monkeypatch.setenv("ACCOUNTS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ACCOUNTS_DATABASE_URL", raising=False)
    monkeypatch.setattr(getpass, "getuser", lambda: "zhang-ops")
    assert main(["migrate"]) == 0
    assert main(["seed-demo"]) == 0
    made = main(
        ["create-staff", "--username", "cli-made", "--display-name", "值班", "--password",
         "correct horse battery", "--role", "school_staff", "--unit-key", "410711"]
    )  # fmt: skip
    assert made == 0
    with sqlite3.connect(tmp_path / "accounts.sqlite3") as db:
        actors = db.execute(
            "SELECT actor, count(*) FROM audit_entry WHERE action = 'staff_user.create'"
            " GROUP BY actor"
        ).fetchall()
    assert actors == [("cli:zhang-ops", 2)]  # the demo login and the one made here
