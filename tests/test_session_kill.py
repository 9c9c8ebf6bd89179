"""`kill -9` of a real-time `homeapp session run` in the middle of a session: the log
passes `PRAGMA integrity_check`, the session is `interrupted`, and every event logged
before the kill is there."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from homeapp.store import Store
from tests.sessionkit import rx_dict


def test_kill_9_mid_session_leaves_an_interrupted_session_with_every_event(tmp_path):
    rx = tmp_path / "rx.json"
    rx.write_text(json.dumps(rx_dict()))
    actions = tmp_path / "a.jsonl"
    asked = [(0.2 * (i + 1), 5 + i) for i in range(8)]  # every 0.2 s until 1.6 s
    actions.write_text("".join(json.dumps({"t": t, "do": "intensity", "channel": 0, "ma": ma}) + "\n"
                               for t, ma in asked))
    db = tmp_path / "log.db"
    proc = subprocess.Popen([sys.executable, "-m", "homeapp.cli", "session", "run",
                             "--prescription", str(rx), "--db", str(db),
                             "--trace", str(tmp_path / "t.csv"), "--actions", str(actions),
                             "--allow-unsigned"],  # real time: the session takes 60 s
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # wait until the last scripted request has been logged, then kill mid-contraction
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if db.exists():
                with sqlite3.connect(db, timeout=5) as conn:
                    try:
                        n = conn.execute("SELECT count(*) FROM events WHERE kind='intensity'").fetchone()[0]
                    except sqlite3.OperationalError:
                        n = 0
                if n == len(asked):
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("the runner never logged its scripted requests")
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Store.open(db) as store:  # as the next start of the app would
        sessions = store.sessions()
        assert len(sessions) == 1 and sessions[0]["status"] == "interrupted"
        events = store.session(sessions[0]["id"])["events"]
    logged = [(e["t"], e["detail"]["ma"]) for e in events if e["kind"] == "intensity"]
    assert [ma for _, ma in logged] == [ma for _, ma in asked]
    assert [e["kind"] for e in events][0] == "start"
