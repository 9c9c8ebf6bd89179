"""Helpers for end-to-end session tests: short prescriptions, running `homeapp session run`
in-process, and reading what the board did from the trace."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeapp.cli import main as homeapp_main


def rx_dict(*, channels: list[float] | None = None, blocks: list[dict] | None = None,
            **top: Any) -> dict:
    """A valid prescription in force today: by default 2 channels, one 1-minute block of
    6 cycles (4 s contraction, 6 s rest, 50 Hz, 300 µs, 1 s ramps)."""
    today = dt.date.today()
    channels = channels if channels is not None else [60.0, 40.0]
    block = {"label": "strength", "minutes": 1, "hz": 50, "pulse_us": 300, "on_s": 4,
             "off_s": 6, "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "synchronous"}
    data = {"format": "homeapp.prescription/1", "id": "rx-test", "patient_id": "P-1",
            "clinician_id": "C-1", "issued": (today - dt.timedelta(days=1)).isoformat(),
            "expires": (today + dt.timedelta(days=60)).isoformat(),
            "sessions_per_week": 14, "max_sessions_per_day": 3, "min_hours_between": 0,
            "supervision": "none",
            "channels": [{"label": f"muscle {i}", "max_ma": cap} for i, cap in enumerate(channels)],
            "blocks": blocks if blocks is not None else [block]}
    data.update(top)
    return data


@dataclass
class Run:
    code: int
    summary: dict | None
    stderr: str
    trace: Path
    db: Path

    def trace_obj(self):
        from hw.sim.trace import Trace
        return Trace.read(self.trace)

    def export(self) -> dict:
        import io
        from contextlib import redirect_stdout
        buf = io.StringIO()
        with redirect_stdout(buf):
            assert homeapp_main(["log", "export", "--db", str(self.db)]) == 0
        return json.loads(buf.getvalue())


def run_session(tmp_path: Path, rx: dict, actions: list[dict] | None = None, *,
                name: str = "run", extra: list[str] | None = None, capsys=None,
                db: Path | None = None) -> Run:
    rx_path = tmp_path / f"{name}.rx.json"
    rx_path.write_text(json.dumps(rx))
    trace = tmp_path / f"{name}.trace.csv"
    db = db or tmp_path / f"{name}.db"
    argv = ["session", "run", "--prescription", str(rx_path), "--db", str(db),
            "--trace", str(trace), "--virtual-time", "--allow-unsigned"]
    if actions is not None:
        act = tmp_path / f"{name}.actions.jsonl"
        act.write_text("".join(json.dumps(a) + "\n" for a in actions))
        argv += ["--actions", str(act)]
    argv += extra or []
    if capsys is not None:
        capsys.readouterr()
    code = homeapp_main(argv)
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    summary = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    return Run(code, summary, err, trace, db)


def current_segments(trace, channel: int) -> list[tuple[int, int, float]]:
    """(t0_us, t1_us, signed mA) wherever current flows on `channel`."""
    return trace.current_segments(channel)


def delivered_after(trace, channel: int, t_us: int) -> list[tuple[int, int, float]]:
    return [seg for seg in trace.current_segments(channel) if seg[1] > t_us]


def delivered_between(trace, channel: int, t0_us: int, t1_us: int) -> list[tuple[int, int, float]]:
    return [seg for seg in trace.current_segments(channel) if seg[1] > t0_us and seg[0] < t1_us]
