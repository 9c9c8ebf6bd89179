"""Figures of the clinician's web pages (`make bench`), each beside its goal, on PostgreSQL:

- the patient list (GET /patients, server time in-process: routing, queries, the rows,
  the HTML) for one clinician with 1,000 patients, each with 180 days of daily sessions:
  p95 of repeated views (goal <= 300 ms); also, without a goal, the first view after the
  180 days were loaded (every digest made once) and the first view after every device
  uploaded one more day (every device's new records digested, every row recomputed: what
  the first clinician of the morning waits);
- one patient's review page over 180 days (the page, and its charts' PNG, each goal <= 1 s):
  the chart drawn in its own request (nothing kept), right after its page (which starts
  drawing it), and again for the same log (kept: clinic/web/charts.py).

The clinic is written straight into the service's tables (patients, devices, log_records
by COPY), records made by the device's own line format (`homeapp.sync.record_line`) from
the demo generator's histories: going through the ingest would only re-check 1.1 million
hashes and signatures here, which the ingest's own figures measure. The 1,000 patients'
logs leave out the contractions (the list never reads them); the one reviewed patient's
log has every contraction.
"""
from __future__ import annotations

import datetime as dt
import random
import secrets
import statistics
import time
import warnings

from tests.bench import Figure

PATIENTS = 1000
DAYS = 180
VIEWS = 30
REVIEW_VIEWS = 5


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _load(svc, histories, *, clinician_id: int) -> dict[str, int]:
    """Patients, devices and their chains, straight into the tables (COPY for the records)."""
    from homeapp.bundle import GENESIS
    from clinic.web.demo import chain_lines
    now = dt.datetime.now(dt.timezone.utc)
    raw = svc.engine.raw_connection()
    try:
        cur = raw.cursor()
        device_of = {}
        for h in histories:
            cur.execute("INSERT INTO patients (patient_id, clinician_id, created_at) VALUES (%s, %s, %s) RETURNING id",
                        (h.patient_id, clinician_id, now))
            pk = cur.fetchone()[0]
            kid = "-".join(secrets.token_hex(2) for _ in range(8))
            lines = chain_lines(h, device_key_id=kid, created_at=now - dt.timedelta(days=DAYS)) if h.prescriptions else []
            last_seq, last_hash = (lines[-1][0], lines[-1][2]) if lines else (-1, GENESIS)
            cur.execute("INSERT INTO devices (key_id, public_key_b64, patient_id, paired_at, last_seq, last_hash, "
                        "last_upload_at, last_seen_at, software_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                        "RETURNING id", (kid, "A" * 43 + "=", pk, now - dt.timedelta(days=DAYS), last_seq, last_hash,
                                         h.last_sync, h.last_sync, "0.1.0"))
            device_id = cur.fetchone()[0]
            device_of[h.patient_id] = device_id
            with cur.copy("COPY log_records (device_id, seq, kind, hash, session_id, line, received_at) FROM STDIN") as cp:
                for seq, line, digest in lines:
                    kind = line[line.index('"kind":"') + 8:].split('"', 1)[0]
                    sid = _session_id(line, kind)
                    cp.write_row((device_id, seq, kind, digest, sid, line, h.last_sync or now))
        raw.commit()
    finally:
        raw.close()
    return device_of


def _session_id(line: str, kind: str) -> str | None:
    import json
    if kind not in ("session", "contraction", "event", "report"):
        return None
    data = json.loads(line)["data"]
    return str(data.get("id") if kind == "session" else data.get("session_id"))


def _one_more_day(svc, histories, device_of, *, tag: str = "extra") -> None:
    """Every device uploads one more session (a day's sync), continuing its chain."""
    from homeapp.sync import record_line
    now = dt.datetime.now(dt.timezone.utc)
    raw = svc.engine.raw_connection()
    try:
        cur = raw.cursor()
        for h in histories:
            if not h.sessions:
                continue
            device_id = device_of[h.patient_id]
            cur.execute("SELECT last_seq, last_hash FROM devices WHERE id = %s", (device_id,))
            seq, prev = cur.fetchone()
            base = h.sessions[-1]
            start = now - dt.timedelta(hours=2)
            sid = f"{base['id']}-{tag}"
            session = {k: v for k, v in base.items() if k not in ("events", "contraction_list", "report")}
            session.update(id=sid, started_at=start.isoformat(timespec="seconds"),
                           ended_at=(start + dt.timedelta(minutes=15)).isoformat(timespec="seconds"))
            rows = []
            for kind, data in [("session", session)] + [("event", {"session_id": sid, **e}) for e in base["events"]] \
                    + [("report", {"session_id": sid, **base["report"]})]:
                seq += 1
                line, prev = record_line(seq, kind, data, prev)
                rows.append((device_id, seq, kind, prev, sid, line, now))
            with cur.copy("COPY log_records (device_id, seq, kind, hash, session_id, line, received_at) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
            cur.execute("UPDATE devices SET last_seq = %s, last_hash = %s, last_upload_at = %s, last_seen_at = %s "
                        "WHERE id = %s", (seq, prev, now, now, device_id))
        raw.commit()
    finally:
        raw.close()


def figures() -> list[Figure]:
    from clinic.app import create_app
    from clinic.web import demo
    from tests.clinic.pg import PostgresServer, PostgresUnavailable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from tests.clinic_web.webkit import sign_in
    try:
        server = PostgresServer()
    except PostgresUnavailable as e:
        return [Figure(f"clinic web: skipped ({e})", float("nan"), "", "")]
    server.start()
    try:
        app = create_app(server.new_database())
        svc = app.state.clinic
        svc.add_clinician("bench", demo.DEMO_PASSWORD)
        clinician_id = svc.clinician("bench").clinician_id
        rng = random.Random(11)
        today = dt.datetime.now().astimezone().date()
        profiles = list(demo.PROFILES[:8]) + ["daily"] * (PATIENTS - 8)
        t0 = time.perf_counter()
        histories = [demo.history(p, f"B-{i:04d}", rng=rng, today=today, days=DAYS, clinician="bench",
                                  contractions=(i == 8)) for i, p in enumerate(profiles)]
        device_of = _load(svc, histories, clinician_id=clinician_id)
        load_s = time.perf_counter() - t0
        records = sum(1 + len(h.prescriptions) + sum(1 + len(s["events"]) + len(s["contraction_list"]) + 1
                                                     for s in h.sessions) for h in histories)
        web = sign_in(app, "bench", demo.DEMO_PASSWORD)
        assert isinstance(web, TestClient)

        def view() -> float:
            t = time.perf_counter()
            r = web.get("/patients")
            took = time.perf_counter() - t
            assert r.status_code == 200 and r.text.count('class="pid"') == PATIENTS, r.status_code
            return took * 1000

        first = view()
        warm = [view() for _ in range(VIEWS)]
        _one_more_day(svc, histories, device_of)
        after_sync = view()
        warm2 = [view() for _ in range(VIEWS // 2)]
        # the next day, as served: the background warmer's pass, then the first view
        from clinic.web.overview import Warmer
        _one_more_day(svc, histories, device_of, tag="next")
        t = time.perf_counter()
        Warmer(svc, interval_s=3600).run_once()
        warmer_s = time.perf_counter() - t
        after_warm = view()
        # the one patient with every contraction: the review page over 180 days and its charts
        full = histories[8].patient_id
        first_day = today - dt.timedelta(days=DAYS - 1)
        from clinic.web import charts
        page_ms, png_ms, cold_ms = [], [], []
        for _ in range(REVIEW_VIEWS):     # the chart alone, drawn in its own request (nothing kept)
            charts.forget()
            t = time.perf_counter()
            r = web.get(f"/patients/{full}/review.png?from={first_day}&to={today}")
            cold_ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
        for i in range(REVIEW_VIEWS):     # as a browser asks: the page, then its chart
            if i == 0:
                charts.forget()
            t = time.perf_counter()
            r = web.get(f"/patients/{full}?from={first_day}&to={today}")
            page_ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200 and r.text.count("/sessions/") >= 150, r.status_code
            t = time.perf_counter()
            r = web.get(f"/patients/{full}/review.png?from={first_day}&to={today}")
            png_ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
        p95 = _percentile(warm + warm2, 0.95)
        return [
            Figure(f"clinic web: patient list, {PATIENTS} patients x {DAYS} days, PostgreSQL, p95 of {len(warm + warm2)}",
                   p95, "ms server", "<= 300",
                   f"median {statistics.median(warm + warm2):.0f} ms; {records:,} log records loaded in {load_s:.0f} s"),
            Figure("clinic web: patient list, first view after 180 days loaded (every digest made)", first,
                   "ms server", "", "once, after a clinic's whole history arrives"),
            Figure(f"clinic web: patient list, first view after all {PATIENTS} devices synced a day, no warmer",
                   after_sync, "ms server", "", "every device's new records digested and every row recomputed, once"),
            Figure(f"clinic web: background warmer's pass after all {PATIENTS} devices synced a day", warmer_s * 1000,
                   "ms background", "", "no one waits for it: the serving process runs it every minute"),
            Figure("clinic web: patient list, first view after that pass", after_warm, "ms server", "<= 300"),
            Figure(f"clinic web: one patient's review page over {DAYS} days (median of {REVIEW_VIEWS})",
                   statistics.median(page_ms), "ms server", "<= 1000",
                   f"{len(histories[8].sessions)} sessions with every contraction; worst {max(page_ms):.0f} ms"),
            Figure(f"clinic web: that review's charts (PNG) over {DAYS} days, drawn in the request (median of "
                   f"{REVIEW_VIEWS})", statistics.median(cold_ms), "ms server", "<= 1000",
                   f"nothing kept: a first view without the page; worst {max(cold_ms):.0f} ms"),
            Figure("clinic web: that chart asked right after its page (the page started it), first view",
                   png_ms[0], "ms server", "<= 1000", "the wait left after the page's response"),
            Figure(f"clinic web: that chart again, same log (median of {REVIEW_VIEWS - 1})",
                   statistics.median(png_ms[1:]), "ms server", "<= 1000",
                   f"kept per patient and range until a new record arrives; worst {max(png_ms[1:]):.0f} ms"),
        ]
    finally:
        server.stop()


if __name__ == "__main__":
    for f in figures():
        print(f)
