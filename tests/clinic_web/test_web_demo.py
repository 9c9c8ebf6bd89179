"""`homeapp-clinic demo`: fills an empty database through the ingest, refuses a database
that has patients and bad options, and is the same clinic for the same seed and day."""
from __future__ import annotations

import datetime as dt
import io
import json
import sys

from clinic import cli
from clinic.service import CLI



def run(monkeypatch, capsys, *argv):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_demo_command_fills_an_empty_database_once(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    code, out, err = run(monkeypatch, capsys, "demo", "--db", url, "--patients", "9", "--days", "14",
                         "--today", "2026-12-01")
    assert code == 0, err
    assert "9 patients of 'demo', 3 of 'other'" in out and "DEMO-002: pain" in out and "DEMO-004: progress" in out
    code, out, err = run(monkeypatch, capsys, "demo", "--db", url)
    assert code == 2 and "already has patients" in err
    for bad, says in ((["--patients", "0"], "--patients 0: give 1 to 5000"), (["--days", "3"], "--days 3: give 7 to 730"),
                      (["--today", "2026-02-30"], "--today '2026-02-30': give a date as YYYY-MM-DD")):
        code, out, err = run(monkeypatch, capsys, "demo", "--db", f"sqlite:///{tmp_path / 'other.db'}", *bad)
        assert code == 2 and says in err
    # what the demo made is a log the service verified and exports as the device would
    code, out, err = run(monkeypatch, capsys, "export", "DEMO-003", "--db", url)
    sessions = json.loads(out)["sessions"]
    assert code == 0 and sessions and all(s["started_at"] < "2026-12-02" for s in sessions)
    assert any(e["kind"] == "lead_off" for s in sessions for e in s["events"])


def test_the_same_seed_and_day_give_the_same_clinic(tmp_path):
    from clinic.app import create_app
    from clinic.web import demo
    exports = []
    for n in (1, 2):
        svc = create_app(f"sqlite:///{tmp_path / f'{n}.db'}").state.clinic
        demo.fill(svc, patients=4, days=14, today=dt.date(2026, 12, 1), contractions=False, other_patients=0)
        exports.append([svc.export(CLI, f"DEMO-00{i}") for i in range(1, 5)])
    assert exports[0] == exports[1] and json.loads(exports[0][1])["sessions"]


def test_a_demo_made_in_the_small_hours_has_every_sync_and_session_in_the_past():
    import random

    from clinic.web import demo
    for now in (dt.datetime(2026, 12, 6, 0, 55, tzinfo=dt.timezone.utc),
                dt.datetime(2026, 12, 6, 14, 0, tzinfo=dt.timezone.utc)):
        synced_by = demo.synced_by_at(now)
        rng = random.Random(7)
        for i, profile in enumerate(demo.PROFILES):
            h = demo.history(profile, f"DEMO-{i:03d}", rng=rng, today=now.date(), days=28,
                             clinician="demo", synced_by=synced_by)
            if h.last_sync is None:
                continue
            assert h.last_sync <= now, (profile, h.last_sync)
            assert all(dt.datetime.fromisoformat(s["started_at"]) < h.last_sync for s in h.sessions), profile
            if profile == "no_sync":    # the page says "has not reached the clinic for 5 days" at any hour
                assert 5 <= (now - h.last_sync).days <= 6, h.last_sync
