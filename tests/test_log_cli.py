"""`homeapp log export` and `homeapp log backup` (contract.md: Commands, Log export)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from homeapp.cli import main
from homeapp.store import CSV_COLUMNS, Store

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def filled_db(db_path):
    with Store.open(db_path) as s:
        for n, status in enumerate(("completed", "aborted")):
            sid = f"s{n + 1}"
            s.start_session(session_id=sid, prescription_id="rx-0001",
                            started_at=T0 + dt.timedelta(days=n), planned_contractions=18,
                            channels=1)
            s.add_event(sid, t=12.5, kind="intensity", detail={"channel": 0, "ma": 30})
            s.add_contraction(sid, channel=0, index=0, start_t=20, end_t=30, peak_ma=30.0,
                              completed=True)
            s.end_session(sid, status=status, ended_at=T0 + dt.timedelta(days=n, minutes=20))
    return db_path


def test_export_json_to_stdout(filled_db, capsys):
    assert main(["log", "export", "--db", str(filled_db)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(s["id"], s["status"]) for s in out["sessions"]] == [("s1", "completed"), ("s2", "aborted")]
    assert out["sessions"][0]["channels"] == [
        {"contractions": 1, "peak_ma": 30.0, "mean_ma": 30.0, "contractions_cut_short": 0}]
    assert out["sessions"][0]["events"] == [
        {"t": 12.5, "kind": "intensity", "detail": {"channel": 0, "ma": 30}}]


def test_export_since(filled_db, capsys):
    assert main(["log", "export", "--db", str(filled_db), "--since", "2026-11-22"]) == 0
    assert [s["id"] for s in json.loads(capsys.readouterr().out)["sessions"]] == ["s2"]


def test_export_csv_to_stdout(filled_db, capsys):
    assert main(["log", "export", "--db", str(filled_db), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r[0], r[4], r[6], r[7], json.loads(r[8])) for r in rows[1:]] == [
        ("s1", "completed", "12.5", "intensity", {"channel": 0, "ma": 30}),
        ("s2", "aborted", "12.5", "intensity", {"channel": 0, "ma": 30})]


def test_export_of_a_missing_db_is_one_line_exit_2_and_creates_nothing(tmp_path):
    db = tmp_path / "absent.db"
    run = subprocess.run([sys.executable, "-m", "homeapp.cli", "log", "export", "--db", str(db)],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr == f"homeapp: {db}: no such log database\n"
    assert not db.exists()


def test_export_of_an_unreachable_path_is_one_line_exit_2(tmp_path, capsys):
    db = tmp_path / "no-such-folder" / "homeapp.db"
    assert main(["log", "export", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{db}" in err and "no such log database" in err


def test_export_of_a_damaged_db_is_refused_exit_2(db_path, capsys):
    db_path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    before = db_path.read_bytes()
    assert main(["log", "export", "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "the log database is damaged" in err and "restored from a backup" in err
    assert db_path.read_bytes() == before


def test_export_shows_a_killed_session_as_interrupted(db_path, capsys):
    s = Store.open(db_path)
    s.start_session(session_id="k", prescription_id="rx-0001", started_at=T0,
                    planned_contractions=18, channels=1)
    s.add_event("k", t=1.0, kind="intensity", detail={"channel": 0, "ma": 5})
    s.close()  # gone without ending the session, as after kill -9
    assert main(["log", "export", "--db", str(db_path)]) == 0
    (session,) = json.loads(capsys.readouterr().out)["sessions"]
    assert session["status"] == "interrupted" and len(session["events"]) == 1


def test_backup_command(filled_db, tmp_path, capsys):
    out = tmp_path / "copy.db"
    assert main(["log", "backup", "--db", str(filled_db), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"backed up {filled_db} to {out} (2 sessions)\n"
    copy = sqlite3.connect(out)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT count(*) FROM events").fetchone()[0] == 2
    finally:
        copy.close()
    # never overwrites, and says so in one line
    assert main(["log", "backup", "--db", str(filled_db), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"homeapp: {out}: already exists; a backup never overwrites a file\n"
