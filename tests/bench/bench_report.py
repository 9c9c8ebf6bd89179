"""Benchmark (issue 7): the clinician's review report for five years of daily sessions.

Also home of `synthetic_export`, the log export (contract.md shape plus contractions,
patient reports and prescriptions) that the bundle and report tests build from.
"""
from __future__ import annotations

import datetime as dt
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench import Figure

RX = {"format": "homeapp.prescription/1",
      "id": "rx-0001", "patient_id": "P-0042", "clinician_id": "C-0007",
      "issued": "2021-01-01", "expires": "2031-12-31",   # synthetic_export sets real dates
      "sessions_per_week": 7, "max_sessions_per_day": 2, "min_hours_between": 4,
      "supervision": "none",
      "channels": [{"label": "left quadriceps", "max_ma": 60}, {"label": "right quadriceps", "max_ma": 50}],
      "blocks": [
          {"label": "warm-up", "minutes": 3, "hz": 8, "pulse_us": 250, "on_s": 5, "off_s": 5,
           "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "synchronous"},
          {"label": "strength", "minutes": 15, "hz": 50, "pulse_us": 300, "on_s": 10, "off_s": 50,
           "ramp_up_s": 2, "ramp_down_s": 1, "pattern": "synchronous"}]}


def synthetic_export(n_sessions: int, *, seed: int = 7, end: dt.date | None = None,
                     contractions_per_session: int = 33) -> dict[str, Any]:
    """About one session a day (some days skipped, a few with two) ending yesterday (or
    `end`), each with its contractions per channel, intensity events, a patient report, and
    now and then an e-stop, a fault or a lost electrode. One prescription covers them all."""
    rng = random.Random(seed)
    end = end or dt.date.today() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=round(n_sessions / 0.85 * 0.97))  # ~85% of days, 3% twice
    sessions: list[dict[str, Any]] = []
    day = start
    while len(sessions) < n_sessions:
        day += dt.timedelta(days=1)
        if rng.random() < 0.15:
            continue  # a missed day
        for _ in range(2 if rng.random() < 0.03 else 1):
            i = len(sessions)
            started = dt.datetime.combine(day, dt.time(9 + rng.randrange(10), rng.randrange(60)),
                                          tzinfo=dt.timezone.utc)
            progress = min(1.0, i / 400)
            level = [20 + 25 * progress + rng.uniform(-4, 4), 15 + 20 * progress + rng.uniform(-4, 4)]
            roll = rng.random()
            status = "completed" if roll < 0.9 else ("stopped" if roll < 0.95 else "aborted")
            done = contractions_per_session if status == "completed" else rng.randrange(1, max(2, contractions_per_session))
            events: list[dict[str, Any]] = []
            for ch in (0, 1):
                for k in range(3):
                    events.append({"t": 5.0 + 10 * k + ch, "kind": "intensity",
                                   "detail": {"channel": ch, "ma": round(level[ch] * (k + 1) / 3, 1)}})
            if rng.random() < 0.05:
                events.append({"t": 300.0, "kind": "refused", "detail": {"channel": 0, "ma": 70, "limit_ma": 60}})
            if status == "aborted":
                kind = rng.choice(["estop", "fault", "lead_off"])
                events.append({"t": 400.0, "kind": kind, "detail": {"channel": 1} if kind == "lead_off" else {}})
            elif rng.random() < 0.03:
                events += [{"t": 200.0, "kind": "lead_off", "detail": {"channel": 0}},
                           {"t": 215.0, "kind": "lead_on", "detail": {"channel": 0}}]
            if status == "stopped":
                events.append({"t": 500.0, "kind": "stop", "detail": {}})
            contractions = [{"channel": ch, "index": k, "start_t": 10.0 + 60 * k, "end_t": 20.0 + 60 * k,
                             "peak_ma": round(level[ch] + rng.uniform(-1, 1), 1), "completed": True}
                            for ch in (0, 1) for k in range(done)]
            duration_s = 1080 if status == "completed" else 60 * done
            sessions.append({
                "id": f"s-{i + 1:05d}", "prescription_id": RX["id"],
                "started_at": started.isoformat(),
                "ended_at": (started + dt.timedelta(seconds=duration_s)).isoformat(),
                "status": status, "planned_contractions": contractions_per_session,
                "channels": [{"contractions": done, "peak_ma": round(level[ch] + 1, 1),
                              "mean_ma": round(level[ch], 1), "contractions_cut_short": 0} for ch in (0, 1)],
                "events": events, "contraction_list": contractions,
                "report": {"pain": max(0, min(10, round(4 - 3 * progress + rng.uniform(-1.5, 1.5)))),
                           "effort": max(0, min(10, round(5 + 2 * progress + rng.uniform(-1.5, 1.5)))),
                           "comment": None, "reported_at": started.isoformat()} if rng.random() < 0.8 else None,
                "recovered_at": None})
    # the random walk over days may end a little off `end`: shift every session onto it
    shift = dt.timedelta(days=(end - dt.datetime.fromisoformat(sessions[-1]["started_at"]).date()).days)
    for s in sessions:
        for key in ("started_at", "ended_at"):
            s[key] = (dt.datetime.fromisoformat(s[key]) + shift).isoformat()
        if s["report"]:
            s["report"]["reported_at"] = s["started_at"]
    start += shift
    rx_source = {**RX, "issued": (start - dt.timedelta(days=1)).isoformat(),
                 "expires": (end + dt.timedelta(days=60)).isoformat()}
    prescription = {"id": RX["id"], "sha256": "0" * 64, "patient_id": RX["patient_id"],
                    "clinician_id": RX["clinician_id"], "issued": rx_source["issued"], "expires": rx_source["expires"],
                    "signature_key_id": None, "source": rx_source, "imported_at": "2026-01-01T08:00:00+00:00"}
    return {"sessions": sessions, "prescriptions": [prescription]}


def figures() -> list[Figure]:
    """Wall time and CPU time of `build_report` (verify + plots + HTML) on a 5-year bundle.

    CPU time is what the report costs this machine; wall time also holds whatever else
    the machine was doing (the load average is in the note), so both are printed."""
    import os

    from homeapp.bundle import write_bundle
    from homeapp.report import build_report
    from schedules.signing import generate_keypair

    export = synthetic_export(1800)
    n_records = len(export["sessions"]) + sum(len(s["events"]) + len(s["contraction_list"]) + bool(s["report"])
                                              for s in export["sessions"])
    device_key, device_pub = generate_keypair()
    with tempfile.TemporaryDirectory() as tmp:
        bundle_path = Path(tmp) / "log.bundle"
        t0 = time.perf_counter()
        write_bundle(export, bundle_path, device_key=device_key)
        write_s = time.perf_counter() - t0
        size_mb = bundle_path.stat().st_size / 1e6
        walls, cpus = [], []
        for _ in range(3):  # best of three: the first run also warms matplotlib's caches
            w0, c0 = time.perf_counter(), time.process_time()
            result = build_report(bundle_path, out_html=Path(tmp) / "report.html", device_public_key=device_pub)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        verified = result.verified
        w0, c0 = time.perf_counter(), time.process_time()
        build_report(bundle_path, out_html=Path(tmp) / "report2.html", device_public_key=device_pub,
                     out_pdf=Path(tmp) / "report.pdf")
        pdf_wall, pdf_cpu = time.perf_counter() - w0, time.process_time() - c0
    load = os.getloadavg()[0]
    note = f"1,800 sessions, {n_records:,} records, bundle {size_mb:.0f} MB" + (
        "" if verified else ", BUT THE BUNDLE DID NOT VERIFY")
    return [
        Figure("report, 5 years daily (verify + plots + HTML), CPU", min(cpus), "s", "<= 3", note),
        Figure("report, 5 years daily (verify + plots + HTML), wall", min(walls), "s", "<= 3",
               f"load average {load:.1f} on {os.cpu_count()} CPUs while measuring"),
        Figure("report, 5 years daily, HTML + one-page PDF, CPU", pdf_cpu, "s", "", f"wall {pdf_wall:.2f} s"),
        Figure("log bundle write, 5 years daily, wall", write_s, "s", "", note),
    ]


if __name__ == "__main__":
    for f in figures():
        print(f)
