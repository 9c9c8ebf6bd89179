"""The log store: durability settings, migrations, refusal of damaged files, interrupted
sessions after a real `kill -9`, export shape, online backup while a writer runs."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from homeapp import store as store_mod
from homeapp.store import CSV_COLUMNS, SCHEMA_VERSION, Store, StoreError
from schedules.model import Block, Channel, Prescription

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


def _rx(**changes) -> Prescription:
    source = {"format": "homeapp.prescription/1", "id": "rx-0001", "patient_id": "P-0042",
              "clinician_id": "C-0007", "issued": "2026-11-20", "expires": "2027-02-20"}
    fields = dict(id="rx-0001", patient_id="P-0042", clinician_id="C-0007",
                  issued=dt.date(2026, 11, 20), expires=dt.date(2027, 2, 20),
                  sessions_per_week=5, max_sessions_per_day=1, min_hours_between=4,
                  supervision="none", channels=(Channel("left quadriceps", 60),),
                  blocks=(Block("strength", 15, 50, 300, 10, 50, 2, 1),),
                  signature={"alg": "ed25519", "key_id": "k-1", "value": "x"}, source=source)
    fields.update(changes)
    return Prescription(**fields)


def _session(store: Store, sid: str = "s1", *, channels: int = 1, at: dt.datetime = T0) -> None:
    store.start_session(session_id=sid, prescription_id="rx-0001", started_at=at,
                        planned_contractions=18, channels=channels)


@pytest.fixture
def store(db_path):
    s = Store.open(db_path)
    yield s
    s.close()


# ---------------------------------------------------------------- settings, schema

def test_wal_and_synchronous_full_are_set(store, db_path):
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2  # FULL
    assert store.pragma("foreign_keys") == 1
    raw = sqlite3.connect(db_path)  # WAL is a property of the file, seen by any reader
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_migrates_an_empty_file_and_reopens_idempotently(db_path):
    db_path.write_bytes(b"")  # an empty file is an empty database
    with Store.open(db_path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.pragma("application_id") == store_mod.APPLICATION_ID
        tables = set(s.db.table_names())
        assert {"prescriptions", "sessions", "events", "contractions", "reports"} <= tables
        _session(s)
        s.add_event("s1", t=1.0, kind="intensity", detail={"channel": 0, "ma": 10})
        s.end_session("s1", status="completed", ended_at=T0 + dt.timedelta(minutes=20))
    for _ in range(2):
        with Store.open(db_path) as s:
            assert s.schema_version == SCHEMA_VERSION
            assert set(s.db.table_names()) == tables
            assert [e["kind"] for e in s.session("s1")["events"]] == ["intensity"]


def test_an_older_schema_is_migrated_keeping_its_data(db_path, monkeypatch):
    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS[:1])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 1)
    with Store.open(db_path) as s:  # a log written by the first release
        _session(s)
        s.add_event("s1", t=1.0, kind="intensity", detail={"channel": 0, "ma": 10})
        assert "device_events" not in s.db.table_names()
    monkeypatch.undo()
    with Store.open(db_path) as s:
        assert s.schema_version == SCHEMA_VERSION == 3
        assert s.pin_state("caregiver") == (0, None)
        assert s.session("s1")["events"][0]["detail"] == {"channel": 0, "ma": 10}
        s.add_device_event(kind="start_refused", detail={"reasons": ["too soon"]})
        assert [e["kind"] for e in s.device_events()] == ["start_refused"]


def test_a_failing_migration_leaves_the_previous_version_intact(db_path, monkeypatch):
    with Store.open(db_path) as s:
        _session(s)

    def broken(db):
        db["half_done"].create({"x": int})
        raise RuntimeError("migration bug")

    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS + (broken,))
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError, match="migration bug"):
        Store.open(db_path)
    monkeypatch.undo()
    with Store.open(db_path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert "half_done" not in s.db.table_names()
        assert [x["id"] for x in s.sessions()] == ["s1"]


def test_a_newer_schema_is_refused(db_path):
    Store.open(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=fr"schema version {SCHEMA_VERSION + 1}, newer than "
                                         fr"this homeapp knows \({SCHEMA_VERSION}\); update homeapp"):
        Store.open(db_path)


def test_random_bytes_are_refused_and_left_untouched(db_path):
    junk = os.urandom(8192)
    db_path.write_bytes(junk)
    with pytest.raises(StoreError) as e:
        Store.open(db_path)
    assert str(e.value) == (f"{db_path}: the log database is damaged (file is not a database); "
                            "stimulation is refused until it is restored from a backup")
    assert db_path.read_bytes() == junk


def test_a_truncated_database_is_refused(db_path):
    with Store.open(db_path) as s:
        _session(s)
        for i in range(1500):
            s.add_event("s1", t=i, kind="intensity", detail={"pad": "x" * 100})
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    data = db_path.read_bytes()
    cut = data[: len(data) // 2 // 4096 * 4096]
    db_path.write_bytes(cut)
    with pytest.raises(StoreError, match="the log database is damaged .*stimulation is refused"):
        Store.open(db_path)
    assert db_path.read_bytes() == cut


def test_another_sqlite_file_is_refused(db_path):
    raw = sqlite3.connect(db_path)
    raw.execute("CREATE TABLE photos (id INTEGER)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="not a homeapp log"):
        Store.open(db_path)


def test_unusable_paths_give_one_clear_message(tmp_path):
    missing = tmp_path / "no-such-folder" / "homeapp.db"
    with pytest.raises(StoreError, match=r"homeapp.db: cannot create the log database: the "
                                         r"folder .*no-such-folder does not exist"):
        Store.open(missing)
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(a_file / "homeapp.db")
    with pytest.raises(StoreError, match="not a file"):
        Store.open(tmp_path)
    with pytest.raises(StoreError, match="no such log database"):
        Store.open(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


# ---------------------------------------------------------------- writes

def test_every_event_is_committed_before_add_event_returns(store, db_path):
    _session(store)
    reader = sqlite3.connect(db_path)  # another connection sees only committed data
    try:
        for i in range(5):
            store.add_event("s1", t=float(i), kind="intensity", detail={"channel": 0, "ma": i})
            assert reader.execute("SELECT count(*) FROM events").fetchone()[0] == i + 1
    finally:
        reader.close()


def test_writes_from_an_engine_thread_while_the_ui_thread_reads(store):
    _session(store)
    errors: list[BaseException] = []

    def engine() -> None:
        try:
            for i in range(200):
                store.add_event("s1", t=i * 0.1, kind="intensity", detail={"channel": 0, "ma": 1})
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    th = threading.Thread(target=engine)
    th.start()
    reads = 0
    while th.is_alive():  # the UI reads on its own thread meanwhile
        assert store.session("s1")["status"] == "open"
        reads += 1
    th.join()
    assert not errors
    assert reads > 0
    assert len(store.session("s1")["events"]) == 200


def test_bad_values_are_refused_with_clear_messages(store):
    _session(store)
    with pytest.raises(ValueError, match="time zone"):
        _session(store, "s2", at=dt.datetime(2026, 11, 21, 9, 30))
    with pytest.raises(ValueError, match="finite"):
        store.add_event("s1", t=float("nan"), kind="intensity", detail={})
    with pytest.raises(StoreError, match="no session 'nope'"):
        store.add_event("nope", t=1.0, kind="intensity", detail={})
    with pytest.raises(ValueError, match="channel 1 is not one of the session's channels"):
        store.add_contraction("s1", channel=1, index=0, start_t=0, end_t=10, peak_ma=5,
                              completed=True)
    with pytest.raises(ValueError, match="ends .* before it starts"):
        store.add_contraction("s1", channel=0, index=0, start_t=10, end_t=9, peak_ma=5,
                              completed=True)
    with pytest.raises(ValueError, match="index must be a whole number >= -1"):
        store.add_contraction("s1", channel=0, index=-2, start_t=0, end_t=9, peak_ma=5,
                              completed=False)
    with pytest.raises(ValueError, match="status 'done' is not one of completed"):
        store.end_session("s1", status="done", ended_at=T0)
    store.end_session("s1", status="stopped", ended_at=T0)
    with pytest.raises(StoreError, match=r"already ended \(stopped"):
        store.end_session("s1", status="completed", ended_at=T0)


@pytest.mark.parametrize("pain,effort,message", [
    (11, 3, "pain must be a whole number from 0"), (-1, 3, "pain"), (2.5, 3, "pain"),
    (2, 11, "Borg CR10"), (2, 0.25, "Borg CR10"), (2, -0.5, "Borg CR10"), (2, "3", "Borg CR10"),
])
def test_report_values_are_checked(store, pain, effort, message):
    _session(store)
    with pytest.raises(ValueError, match=message):
        store.save_report("s1", pain=pain, effort=effort, comment=None)


def test_reports_are_kept_and_the_latest_exported(store):
    _session(store)
    store.end_session("s1", status="completed", ended_at=T0)
    store.save_report("s1", pain=3, effort=0.5, comment="tingly")
    store.save_report("s1", pain=2, effort=7, comment=None)
    report = store.export()["sessions"][0]["report"]
    assert (report["pain"], report["effort"], report["comment"]) == (2, 7.0, None)
    assert [(r["session_id"], r["pain"]) for r in store.reports()] == [("s1", 3), ("s1", 2)]


def test_prescriptions_keep_every_version(store):
    rx = _rx()
    sha = store.save_prescription(rx)
    assert store.save_prescription(rx) == sha  # same content: no new row
    changed = _rx(source={**rx.source, "expires": "2027-03-01"})
    assert store.save_prescription(changed) != sha
    rows = store.prescriptions()
    assert [r["id"] for r in rows] == ["rx-0001", "rx-0001"]
    assert rows[0]["signature_key_id"] == "k-1" and rows[0]["source"]["patient_id"] == "P-0042"
    _session(store)  # records the version in force
    version = store.db.execute("SELECT prescription_sha256 FROM sessions").fetchone()[0]
    assert version == rows[1]["sha256"]


def test_only_one_session_at_a_time_per_log(db_path):
    with Store.open(db_path) as a, Store.open(db_path) as b:
        _session(a, "s1")
        with pytest.raises(StoreError, match="another session is running"):
            _session(b, "s2")
        a.end_session("s1", status="completed", ended_at=T0)
        _session(b, "s2")  # the lock is free once s1 ended


# ---------------------------------------------------------------- interrupted

def test_a_session_left_open_becomes_interrupted_at_the_next_open(db_path):
    s = Store.open(db_path)
    _session(s)
    s.add_event("s1", t=1.0, kind="intensity", detail={"channel": 0, "ma": 5})
    last_write = s.db.execute("SELECT logged_at FROM events").fetchone()[0]
    s.close()  # the runner goes away without ending its session
    with Store.open(db_path) as s:
        assert s.recovered == ["s1"]
        got = s.session("s1")
        assert got["status"] == "interrupted"
        assert got["ended_at"] == last_write  # its last sign of life, not "now"
        assert got["recovered_at"] is not None
        assert s.mark_interrupted() == []


def test_a_running_session_is_not_marked_interrupted(db_path):
    with Store.open(db_path) as runner:
        _session(runner, "old")
        runner._release_live()  # as if "old"'s runner had died and left it open
        _session(runner, "live")
        with Store.open(db_path) as reader:  # e.g. `log export` during a session
            assert reader.recovered == ["old"]
            assert reader.session("live")["status"] == "open"
            assert [x["id"] for x in reader.export()["sessions"]] == ["old"]
        assert runner.mark_interrupted(T0) == []  # the runner's own session stays open
        runner.add_event("live", t=2.0, kind="pause", detail={})


_WRITER = textwrap.dedent("""
    import datetime as dt, sys, time
    from homeapp.store import Store
    s = Store.open(sys.argv[1])
    s.start_session(session_id="k1", prescription_id="rx-0001",
                    started_at=dt.datetime.now(dt.timezone.utc), planned_contractions=18, channels=2)
    print(0, flush=True)
    i = 0
    while True:
        s.add_event("k1", t=i * 0.01, kind="intensity", detail={"channel": i % 2, "ma": i % 60})
        if i % 10 == 9:
            s.add_contraction("k1", channel=0, index=i // 10, start_t=i * 0.01, end_t=i * 0.01 + 0.05,
                              peak_ma=float(i % 60), completed=True)
        i += 1
        print(i, flush=True)   # this many events are on disk
        time.sleep(float(sys.argv[2]))
""")


def _start_writer(db_path: Path, pause_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(db_path), str(pause_s)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)


def _wait_for(child: subprocess.Popen, count: int) -> int:
    deadline = time.monotonic() + 20
    n = -1
    while n < count:
        line = child.stdout.readline()
        assert line, f"the writer died early (exit {child.poll()})"
        n = int(line)
        assert time.monotonic() < deadline
    return n


def test_kill_9_mid_session_loses_no_recorded_event(db_path):
    child = _start_writer(db_path, 0.0)
    try:
        confirmed = _wait_for(child, 300)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        for line in child.stdout:  # lines printed before the kill also count
            confirmed = int(line)
    finally:
        child.kill()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert raw.execute("SELECT status FROM sessions").fetchall() == [("open",)]
    finally:
        raw.close()
    with Store.open(db_path) as s:
        assert s.recovered == ["k1"]
        got = s.export()["sessions"][0]
        assert got["status"] == "interrupted" and got["ended_at"] is not None
        ma = [e["detail"]["ma"] for e in got["events"]]
        # every confirmed event, and at most one more (written, killed before printing)
        assert confirmed <= len(ma) <= confirmed + 1
        assert ma[:confirmed] == [i % 60 for i in range(confirmed)]
        # a contraction is written after every tenth event, in its own transaction: the
        # kill can fall between the two, and then the tenth event's contraction is missing
        n = len(ma)
        assert got["channels"][0]["contractions"] in ({n // 10, n // 10 - 1} if n % 10 == 0 else {n // 10})


# ---------------------------------------------------------------- export, backup

CONTRACT_SESSION_KEYS = {"id", "prescription_id", "started_at", "ended_at", "status",
                         "planned_contractions", "channels", "events"}


def test_export_has_contract_md_shape(store):
    _session(store, channels=2)
    store.add_event("s1", t=12.5, kind="intensity", detail={"channel": 0, "ma": 30})
    store.add_event("s1", t=13.0, kind="refused", detail={"channel": 0, "ma": 70, "limit_ma": 60})
    # as the engine logs them: completed ones numbered, a cut-short one with index -1
    for i, (index, peak, done) in enumerate([(0, 40.0, True), (1, 44.0, True), (-1, 50.0, False)]):
        store.add_contraction("s1", channel=0, index=index, start_t=20 + i * 60,
                              end_t=30 + i * 60, peak_ma=peak, completed=done)
    store.add_device_event(kind="start_refused", detail={"reasons": ["expired"]}, at=T0)
    store.end_session("s1", status="completed", ended_at=T0 + dt.timedelta(minutes=18))
    exported = json.loads(json.dumps(store.export(), allow_nan=False))
    assert set(exported) == {"sessions", "device_events"}
    (s,) = exported["sessions"]
    assert CONTRACT_SESSION_KEYS <= set(s)
    assert set(s) - CONTRACT_SESSION_KEYS == {"report", "contraction_list", "recovered_at"}
    assert (s["id"], s["prescription_id"], s["status"], s["planned_contractions"]) == \
        ("s1", "rx-0001", "completed", 18)
    assert s["started_at"] == "2026-11-21T09:30:00+00:00"
    assert s["ended_at"] == "2026-11-21T09:48:00+00:00"
    assert s["channels"] == [
        {"contractions": 2, "peak_ma": 50.0, "mean_ma": 42.0, "contractions_cut_short": 1},
        {"contractions": 0, "peak_ma": 0.0, "mean_ma": 0.0, "contractions_cut_short": 0}]
    assert s["events"][0] == {"t": 12.5, "kind": "intensity", "detail": {"channel": 0, "ma": 30}}
    assert [e["kind"] for e in s["events"]] == ["intensity", "refused"]
    assert [(c["index"], c["completed"]) for c in s["contraction_list"]] == \
        [(0, True), (1, True), (-1, False)]
    assert exported["device_events"] == [
        {"at": "2026-11-21T09:30:00+00:00", "kind": "start_refused",
         "detail": {"reasons": ["expired"]}}]


def test_export_since_and_order(store):
    for n, sid in enumerate(["b", "a", "c"]):
        _session(store, sid, at=T0 + dt.timedelta(days=(1, 0, 2)[n]))
        store.end_session(sid, status="stopped", ended_at=T0 + dt.timedelta(days=3))
    assert [s["id"] for s in store.export()["sessions"]] == ["a", "b", "c"]
    assert [s["id"] for s in store.export(since=T0 + dt.timedelta(hours=1))["sessions"]] == ["b", "c"]
    starts = store.session_starts("rx-0001")
    assert starts[0] == (T0, "stopped") and len(starts) == 3


def test_export_csv_one_row_per_event(store):
    _session(store)
    store.add_event("s1", t=1.0, kind="intensity", detail={"channel": 0, "ma": 3})
    store.add_event("s1", t=2.5, kind="stop", detail={})
    store.end_session("s1", status="stopped", ended_at=T0)
    _session(store, "s2", at=T0 + dt.timedelta(hours=5))
    store.end_session("s2", status="aborted", ended_at=T0 + dt.timedelta(hours=5))
    out = io.StringIO()
    store.export_csv(out)
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert lines[1].endswith(',1.0,intensity,"{""channel"":0,""ma"":3}"')
    assert lines[2].endswith(",2.5,stop,{}")
    assert lines[3].startswith("s2,rx-0001,") and lines[3].endswith(",aborted,18,,,")
    assert len(lines) == 4


def test_backup_while_another_process_writes(db_path, tmp_path):
    child = _start_writer(db_path, 0.002)
    try:
        _wait_for(child, 20)
        with Store.open(db_path) as s:  # the writer's session is live: not interrupted
            assert s.recovered == []
            for k in range(3):
                before = _wait_for(child, 0)
                dest = s.backup(tmp_path / f"copy{k}.db")
                copy = sqlite3.connect(dest)
                try:
                    assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
                    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
                    assert copy.execute("SELECT count(*) FROM events").fetchone()[0] >= before
                finally:
                    copy.close()
            with pytest.raises(StoreError, match="already exists; a backup never overwrites"):
                s.backup(tmp_path / "copy0.db")
        after = _wait_for(child, before + 5)  # the writer never stalled
        assert after > before
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()
    with Store.open(tmp_path / "copy2.db") as b:  # a backup is a usable homeapp log
        assert b.sessions()[0]["id"] == "k1"


def test_event_details_are_kept_as_strict_json(store):
    _session(store)
    store.add_event("s1", t=3.0, kind="fault",
                    detail={"reading": float("nan"), "caps": (60.0, 40.0), "day": dt.date(2026, 11, 21),
                            "error": ValueError("bus")})
    (event,) = store.session("s1")["events"]
    assert event["detail"] == {"reading": "nan", "caps": [60.0, 40.0], "day": "2026-11-21",
                               "error": "bus"}
    json.dumps(event, allow_nan=False)  # a NaN would make the export invalid JSON


def test_write_problem_says_when_the_log_cannot_take_a_session(tmp_path, monkeypatch):
    import homeapp.store as store_module
    with Store.open(tmp_path / "log.db") as store:
        assert store.write_problem() is None
        monkeypatch.setattr(store_module, "MIN_FREE_BYTES", 1 << 60)   # more than any disk holds
        problem = store.write_problem()
        assert problem is not None and problem.startswith("the disk is full (") and "KB free" in problem
