"""`python -m tests.review_demo OUT_DIR`: a month and a one-day history made headless with
`homeapp session run --start-at` and the actions file's `report`, bundled and reviewed
(HTML and PDF) into OUT_DIR, for the screenshots in docs/review (`make review-screenshots`)."""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import sys
import tempfile
from pathlib import Path

from homeapp.bundle import write_bundle
from homeapp.cli import main
from homeapp.report import build_report
from homeapp.store import Store
from schedules.signing import generate_keypair

UTC = dt.timezone.utc


def short_rx(*, issued: dt.date, per_week: int = 5, per_day: int = 1, hours_between: float = 4,
             rx_id: str = "rx-knee-20261106") -> dict:
    """A one-minute program, so a month of sessions runs in seconds of virtual time."""
    return {"format": "homeapp.prescription/1", "id": rx_id, "patient_id": "P-0042",
            "clinician_id": "C-0007", "issued": issued.isoformat(),
            "expires": (issued + dt.timedelta(days=90)).isoformat(),
            "sessions_per_week": per_week, "max_sessions_per_day": per_day,
            "min_hours_between": hours_between, "supervision": "none",
            "channels": [{"label": "left quadriceps", "max_ma": 60}],
            "blocks": [{"label": "strength", "minutes": 1, "hz": 35, "pulse_us": 300, "on_s": 5,
                        "off_s": 5, "ramp_up_s": 1, "ramp_down_s": 1}]}


def _session(work: Path, rx: Path, db: Path, start: dt.datetime, actions: list[dict]) -> None:
    acts = work / "actions.jsonl"
    acts.write_text("".join(json.dumps(a) + "\n" for a in actions), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["session", "run", "--prescription", str(rx), "--db", str(db), "--trace",
                     str(work / "trace.csv"), "--actions", str(acts), "--virtual-time", "--allow-unsigned",
                     "--start-at", start.isoformat()])
    if code != 0:
        raise SystemExit(f"session at {start} refused: {err.getvalue()}")


def make(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    private, public = generate_keypair()
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # a month: five a week asked, most days done, pain creeping up, a comment, an e-stop
        first = dt.date(2026, 11, 6)
        rx = work / "rx.json"
        rx.write_text(json.dumps(short_rx(issued=first)))
        db = work / "month.db"
        for i in range(30):
            if i % 7 in (2, 5) or i in (16, 17, 18):
                continue
            start = dt.datetime.combine(first + dt.timedelta(days=i), dt.time(9 + i % 3, 15), tzinfo=UTC)
            actions = [{"t": 1, "do": "intensity", "channel": 0, "ma": 18 + i / 2}]
            report = {"t": 0, "do": "report", "pain": round(2 + 5 * i / 29), "effort": 4 + (i % 3) / 2}
            if i == 20:
                actions.append({"t": 25, "do": "stop"})
                report["comment"] = "sharp pain, pressed stop"
            if i == 27:
                actions += [{"t": 15, "do": "estop"}, {"t": 20, "do": "estop_release"}]
            _session(work, rx, db, start, actions + [report])
        with Store.open(db) as store:
            write_bundle(store, work / "month.bundle", device_key=private,
                         created_at=dt.datetime(2026, 12, 5, 18, tzinfo=UTC).isoformat())
        build_report(work / "month.bundle", out_html=out_dir / "month.html", out_pdf=out_dir / "month.pdf",
                     device_public_key=public, tz=UTC)
        # one day: three sessions on Saturday 5 December under a prescription allowing three a day
        day = dt.date(2026, 12, 5)
        rx1 = work / "rx1.json"
        rx1.write_text(json.dumps(short_rx(issued=day, per_day=3, hours_between=1)))
        db1 = work / "day.db"
        for hour in (9, 11, 13):
            _session(work, rx1, db1, dt.datetime.combine(day, dt.time(hour), tzinfo=UTC),
                     [{"t": 1, "do": "intensity", "channel": 0, "ma": 25},
                      {"t": 0, "do": "report", "pain": 2, "effort": 3}])
        with Store.open(db1) as store:
            write_bundle(store, work / "day.bundle", device_key=private,
                         created_at=dt.datetime(2026, 12, 5, 18, tzinfo=UTC).isoformat())
        build_report(work / "day.bundle", out_html=out_dir / "day.html", out_pdf=out_dir / "day.pdf",
                     device_public_key=public, tz=UTC)
    written += [out_dir / f"{n}.{x}" for n in ("month", "day") for x in ("html", "pdf")]
    return written


if __name__ == "__main__":
    for path in make(Path(sys.argv[1] if len(sys.argv) > 1 else "review-demo")):
        print(path)
