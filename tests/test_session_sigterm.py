"""SIGTERM to a real-time `homeapp session run` in the middle of a contraction: the
driver's safe stop runs (enable low, legs low, DAC zero) before the process exits 143."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

from hw.sim.trace import Trace
from tests.sessionkit import rx_dict


def _started(db) -> bool:
    if not db.exists():
        return False
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM events WHERE kind='start'").fetchone()[0] > 0
    except sqlite3.OperationalError:  # the schema is still being made
        return False


def test_sigterm_mid_contraction_stops_safely_and_exits_143(tmp_path):
    rx = tmp_path / "rx.json"
    rx.write_text(json.dumps(rx_dict()))
    actions = tmp_path / "a.jsonl"
    actions.write_text(json.dumps({"t": 0, "do": "intensity", "channel": 0, "ma": 10}) + "\n")
    trace = tmp_path / "t.csv"
    proc = subprocess.Popen([sys.executable, "-m", "homeapp.cli", "session", "run",
                             "--prescription", str(rx), "--db", str(tmp_path / "log.db"),
                             "--trace", str(trace), "--actions", str(actions), "--allow-unsigned"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = tmp_path / "log.db"
    deadline = time.monotonic() + 30
    while not _started(db):  # the runner's start-up may be slow on a loaded machine
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    time.sleep(1.5)  # inside the first contraction (0 to 4 s), current flowing by now
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 143, proc.stderr.read().decode()
    tr = Trace.read(trace)
    end = tr.end_us()
    assert tr.current_segments(0), "it was stimulating before the signal"
    for name in ("enable", "ch0.a", "ch0.b", "ch1.a", "ch1.b", "ch0.ma", "ch1.ma"):
        assert tr.value_at(name, end) == 0, name
    last_current = max(t1 for _, t1, _ in tr.current_segments(0))
    assert last_current < 4_000_000  # cut inside the first contraction, not left playing
