"""Wall time of a 20-minute two-channel session in virtual time, through the real command
(`homeapp session run`: simulator, driver over pigpio's socket, engine, SQLite log)."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench import Figure
from tests.sessionkit import rx_dict


def figures() -> list[Figure]:
    rx = rx_dict(blocks=[
        {"label": "warm-up", "minutes": 5, "hz": 8, "pulse_us": 250, "on_s": 5, "off_s": 5,
         "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "synchronous"},
        {"label": "strength", "minutes": 15, "hz": 100, "pulse_us": 300, "on_s": 10, "off_s": 10,
         "ramp_up_s": 2, "ramp_down_s": 2, "pattern": "synchronous"}])
    actions = [{"t": 0, "do": "intensity", "channel": 0, "ma": 40},
               {"t": 0, "do": "intensity", "channel": 1, "ma": 30}]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "rx.json").write_text(json.dumps(rx))
        (d / "a.jsonl").write_text("".join(json.dumps(a) + "\n" for a in actions))
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "homeapp.cli", "session", "run",
                              "--prescription", str(d / "rx.json"), "--db", str(d / "s.db"),
                              "--trace", str(d / "t.csv"), "--actions", str(d / "a.jsonl"),
                              "--virtual-time", "--allow-unsigned"],
                             capture_output=True, text=True, check=True)
        wall_s = time.perf_counter() - t0
        summary = json.loads(out.stdout)
        rows = sum(1 for _ in open(d / "t.csv")) - 1
    return [Figure("headless session, 20 min, 2 ch (8 + 100 Hz), virtual time", wall_s, "s wall",
                   "<= 15", f"{summary['contractions']} contractions, {rows} trace rows")]
