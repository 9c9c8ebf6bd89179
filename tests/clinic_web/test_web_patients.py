"""The patient list and one patient's pages on the demo clinic: each clinician sees only
their own patients (every patient route, asked for another clinician's patient, is a 404
with an audit row), the flags the demo's situations must raise, search and sort, the
review page, and the exports (CSV as the command line's, the PDF; the FHIR Bundle: test_web_fhir.py)."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from clinic.service import CLI
from clinic.web import demo, overview

from .webkit import alert, all_routes, csrf_of, demo_app, sign_in


@pytest.fixture(scope="module")
def made_app(tmp_path_factory):
    return demo_app(tmp_path_factory.mktemp("patients"), patients=10, days=28)


@pytest.fixture(scope="module")
def clinic_app(made_app):
    return made_app[0]


@pytest.fixture(scope="module")
def web(clinic_app):
    return sign_in(clinic_app)


def _rows(html: str) -> dict[str, str]:
    """Patient id -> the HTML of that patient's row in the list."""
    out = {}
    for row in re.findall(r"<tr>\s*<th scope=\"row\" class=\"pid\">(.*?)</tr>", html, re.S):
        pid = re.search(r">([^<]+)</a>", row).group(1)
        out[pid] = row
    return out


def _flags(row_html: str) -> list[tuple[str, str, str]]:
    """(level, name, explanation) of each flag in a row, the title (hover) checked against the visible text."""
    out = []
    for level, title, name, why in re.findall(
            r'<li class="flag (\w+)" title="([^"]*)">([^<]*)<span class="why">([^<]*)</span></li>', row_html):
        assert title == why, "the hover text and the visible explanation differ"
        out.append((level, name, why))
    return out


def test_the_list_shows_only_this_clinicians_patients(clinic_app, web):
    html = web.get("/patients").text
    rows = _rows(html)
    assert sorted(rows) == [f"DEMO-{i:03d}" for i in range(1, 11)]
    assert "OTHER-" not in html
    other = sign_in(clinic_app, demo.OTHER_CLINICIAN)
    assert sorted(_rows(other.get("/patients").text)) == ["OTHER-001", "OTHER-002", "OTHER-003"]


def test_the_demo_situations_raise_their_flags(web):
    rows = _rows(web.get("/patients").text)
    flags = {pid: _flags(html) for pid, html in rows.items()}
    names = {pid: {name for _, name, _ in f} for pid, f in flags.items()}
    assert {"Pain 6/10 or more", "Pain rising"} <= names["DEMO-002"]
    assert "Electrode problem" in names["DEMO-003"] and "Ended early" in names["DEMO-003"]
    assert {"E-stop", "Fault"} <= names["DEMO-008"]
    assert "No device" in names["DEMO-009"]
    # a device that stopped syncing is not a patient who stopped training, and the reverse
    assert "Device not syncing" in names["DEMO-005"] and "Not training" not in names["DEMO-005"]
    assert "Not training" in names["DEMO-007"] and "Device not syncing" not in names["DEMO-007"]
    why_sync = next(w for _, n, w in flags["DEMO-005"] if n == "Device not syncing")
    assert re.search(r"has not reached the clinic for [5-6] days", why_sync)
    why_training = next(w for _, n, w in flags["DEMO-007"] if n == "Not training")
    assert "The device synced on" in why_training and "the last session was on" in why_training
    assert not flags["DEMO-001"] and "nothing to flag" in rows["DEMO-001"]
    assert all(level == "bad" for level, name, _ in flags["DEMO-002"] if name.startswith("Pain"))
    pain = next(w for _, n, w in flags["DEMO-002"] if n == "Pain 6/10 or more")
    assert re.search(r"Pain 6/10 or more after \d+ sessions \(highest [6-8]/10\), last on", pain)


def test_this_week_counts_against_the_prescription(clinic_app, web):
    rows = _rows(web.get("/patients").text)
    # what the list says is what the review's own adherence says, from the full export
    from homeapp.report import adherence_over, review_of_export
    svc = clinic_app.state.clinic
    export = json.loads(svc.export(CLI, "DEMO-001"))
    today = dt.datetime.now().astimezone().date()
    review = review_of_export({**export, "prescriptions": _log_prescriptions(svc, "DEMO-001")},
                              created_at=dt.datetime.now().astimezone().isoformat())
    week = adherence_over(review.sessions, review.prescriptions, end_day=today,
                          since=today - dt.timedelta(days=today.weekday()))
    assert review.sessions
    assert re.search(rf"<b>{week.done + week.extra} of 5</b>", rows["DEMO-001"])
    assert f"{week.due} due by today" in rows["DEMO-001"]


def _log_prescriptions(svc, patient_id):
    text = svc.bundle(CLI, patient_id)
    return [json.loads(line)["data"] for line in text.splitlines() if '"kind":"prescription"' in line]


def test_search_sort_and_only_flagged(web):
    html = web.get("/patients?q=demo-00&sort=patient&dir=asc").text
    assert list(_rows(html)) == [f"DEMO-{i:03d}" for i in range(1, 10)]
    assert 'aria-sort="ascending"' in html
    desc = list(_rows(web.get("/patients?sort=patient&dir=desc").text))
    assert desc[0] == "DEMO-010" and desc[-1] == "DEMO-001"
    flagged = _rows(web.get("/patients?flagged=1").text)
    assert "DEMO-001" not in flagged and "DEMO-002" in flagged
    attention = list(_rows(web.get("/patients").text))
    assert attention.index("DEMO-008") < attention.index("DEMO-001")   # urgent first
    assert "No patient matches." in web.get("/patients?q=zzz").text
    assert web.get("/patients?sort=nonsense").status_code == 200


def test_a_new_upload_changes_the_row(made_app, web):
    """The cached row follows the log: a session with pain 9 uploaded now flags DEMO-010."""
    app, made = made_app
    before = {n for _, n, _ in _flags(_rows(web.get("/patients").text)["DEMO-010"])}
    assert "Pain 6/10 or more" not in before
    upload_one_more(app.state.clinic, "DEMO-010", made["device_keys"]["DEMO-010"], pain=9)
    after = {n for _, n, _ in _flags(_rows(web.get("/patients").text)["DEMO-010"])}
    assert "Pain 6/10 or more" in after


def test_the_background_warmer_computes_the_rows_before_anyone_looks(made_app, web):
    """After an upload, one warmer pass digests it and recomputes the row: the next view
    finds the row's key unchanged and recomputes nothing."""
    app, made = made_app
    svc = app.state.clinic
    web.get("/patients")
    upload_one_more(svc, "DEMO-001", made["device_keys"]["DEMO-001"], pain=8)
    warmer = overview.Warmer(svc, interval_s=3600)
    assert warmer.run_once() >= 10 and warmer.passes == 1
    computed = []
    real = overview.compute_row
    overview.compute_row = lambda *a, **k: computed.append(a[0]) or real(*a, **k)
    try:
        html = web.get("/patients").text
    finally:
        overview.compute_row = real
    assert computed == [] and "Pain 6/10 or more" in _rows(html)["DEMO-001"]


def upload_one_more(svc, patient_id: str, key, *, pain: int) -> None:
    """One more session on the patient's device, continuing its chain, through the ingest."""
    import base64
    import secrets

    from sqlalchemy import select

    from clinic.models import Device, LogRecord, Patient
    from clinic.service import DeviceRef, DeviceRequest
    from homeapp import syncproto
    from homeapp.sync import record_line
    with svc.Session() as db:
        d = db.scalar(select(Device).join(Patient, Patient.id == Device.patient_id)
                      .where(Patient.patient_id == patient_id))
        last = json.loads(db.scalar(select(LogRecord.line).where(LogRecord.device_id == d.id, LogRecord.kind == "session")
                                    .order_by(LogRecord.seq.desc()).limit(1)))["data"]
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    session = {**last, "id": f"extra-{start:%H%M%S}", "started_at": start.isoformat(timespec="seconds"),
               "ended_at": (start + dt.timedelta(minutes=15)).isoformat(timespec="seconds"), "status": "completed"}
    lines, prev, seq = [], d.last_hash, d.last_seq
    for kind, data in (("session", session),
                       ("report", {"session_id": session["id"], "pain": pain, "effort": 5.0, "comment": None,
                                   "reported_at": session["ended_at"]})):
        seq += 1
        line, prev = record_line(seq, kind, data, prev)
        lines.append(line)
    sig = key.sign(syncproto.end_payload(d.key_id, seq, prev))
    end = {"kind": "end", "count": seq, "head": prev, "device_key_id": d.key_id,
           "signature": base64.b64encode(sig).decode()}
    ref = DeviceRef(id=d.id, key_id=d.key_id, public_key_b64=d.public_key_b64, patient_id=d.patient_id)
    svc.ingest(DeviceRequest(device=ref, key_id=d.key_id, nonce=secrets.token_hex(16),
                             at=dt.datetime.now(dt.timezone.utc), public_key=key.public_key()),
               ("\n".join(lines) + "\n" + json.dumps(end) + "\n").encode())


# ------------------------------------------------------------------ every route, another's patient

def _patient_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every page route that names a patient, whoever added it."""
    out = []
    for path, route in all_routes(app.routes):
        if path.startswith("/patients/{patient_id}"):
            for method in sorted(getattr(route, "methods", None) or ()):
                if method in ("GET", "POST", "PUT", "DELETE"):
                    out.append((method, path))
    return out


def test_every_patient_route_answers_404_for_another_clinicians_patient_and_audits_it(clinic_app, web):
    svc = clinic_app.state.clinic
    other_session = json.loads(svc.export(CLI, "OTHER-001"))["sessions"][0]["id"]
    routes = _patient_routes(clinic_app)
    assert {p for _, p in routes} >= {"/patients/{patient_id}", "/patients/{patient_id}/review.png",
                                     "/patients/{patient_id}/sessions/{session_id}",
                                     "/patients/{patient_id}/export.csv", "/patients/{patient_id}/review.pdf",
                                     "/patients/{patient_id}/fhir.json"}
    token = csrf_of(web.get("/patients").text)
    for target in ("OTHER-001", "NOBODY-999"):
        for method, template in routes:
            path = (template.replace("{patient_id}", target).replace("{session_id}", other_session)
                    .replace("{", "").replace("}", ""))
            before = len(svc.audit_entries(patient_ref=target))
            r = web.request(method, path, data={"csrf_token": token} if method != "GET" else None)
            assert r.status_code == 404, (method, path, r.status_code)
            assert alert(r.text) == f"No patient {target} among your patients.", (method, path)
            entries = svc.audit_entries(patient_ref=target)
            assert len(entries) == before + 1, (method, path)
            assert entries[0]["outcome"] == "denied" and entries[0]["actor"] == "clinician:demo", entries[0]
    # and the other clinician's own view of the same routes works
    other = sign_in(clinic_app, demo.OTHER_CLINICIAN)
    assert other.get("/patients/OTHER-001").status_code == 200
    assert other.get(f"/patients/OTHER-001/sessions/{other_session}").status_code == 200


def test_the_review_page_over_a_chosen_range(clinic_app, web):
    today = dt.datetime.now().astimezone().date()
    first = today - dt.timedelta(days=13)
    page = web.get(f"/patients/DEMO-002?from={first}&to={today}")
    assert page.status_code == 200
    html = page.text
    assert "Needs attention" in html and "Pain 6/10 or more" in html
    # the sessions listed are those of the range, newest first, each linking to its page
    dates = re.findall(r'/sessions/[^"]+">\w{3} (\d{4}-\d{2}-\d{2}) ', html)
    assert dates and dates == sorted(dates, reverse=True) and min(dates) >= first.isoformat()
    export = json.loads(clinic_app.state.clinic.export(CLI, "DEMO-002"))
    in_range = [s for s in export["sessions"]
                if first <= dt.datetime.fromisoformat(s["started_at"]).astimezone().date() <= today]
    assert len(dates) == len(in_range)
    # the prescription history says when the prescription was in use over the whole log, not the range
    first_ever = min(dt.datetime.fromisoformat(s["started_at"]).astimezone().date() for s in export["sessions"])
    assert first_ever < first and first_ever.isoformat().replace("-", "\u2011") in html
    # the chart is the review's PNG over the same range
    png = re.search(r'<img class="charts" src="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert f"from={first}" in png
    r = web.get(png)
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    # history and device
    assert "rx-demo-002-1" in html and "installed" in html and "demo" in html
    device = clinic_app.state.clinic.patient(CLI, "DEMO-002")["devices"][0]
    assert device["key_id"] in html and (device["software_version"] or "") in html
    # another page module's link on the patient's menu
    from clinic.web import patient
    patient.PATIENT_LINKS.append(("Program", "/patients/{patient_id}/program"))
    try:
        assert '<a href="/patients/DEMO-002/program">Program</a>' in web.get("/patients/DEMO-002").text
    finally:
        patient.PATIENT_LINKS.pop()
    # a device that stopped syncing says so on the patient's page too, and its silent days are not missed
    quiet = web.get("/patients/DEMO-005").text
    assert "Device not syncing" in quiet and "Adherence counts up to" in quiet
    assert "Device not syncing" not in html
    # a bad range is a clear refusal
    r = web.get("/patients/DEMO-002?from=2026-02-30")
    assert r.status_code == 400 and "give a date as YYYY-MM-DD" in alert(r.text)
    r = web.get(f"/patients/DEMO-002?from={today}&to={first}")
    assert r.status_code == 400 and "give the earlier day first" in alert(r.text)


def test_a_sessions_page_lists_every_contraction_and_event(clinic_app, web):
    export = json.loads(clinic_app.state.clinic.export(CLI, "DEMO-008"))
    s = next(x for x in reversed(export["sessions"]) if any(e["kind"] == "estop" for e in x["events"]))
    html = web.get(f"/patients/DEMO-008/sessions/{s['id']}").text
    rows = re.findall(r"<tr class=\"[a-z ]*\"><td class=\"n\">", html)
    assert len(rows) == len(s["events"]) + len(s["contraction_list"])
    assert ">estop<" in html and "aborted" in html
    assert web.get("/patients/DEMO-008/sessions/no-such-session").status_code == 404


def test_the_exports(clinic_app, web):
    svc = clinic_app.state.clinic
    r = web.get("/patients/DEMO-008/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text == svc.export(CLI, "DEMO-008", "csv")   # exactly `homeapp-clinic export --format csv`
    assert 'filename="DEMO-008-log.csv"' in r.headers["content-disposition"]
    r = web.get("/patients/DEMO-008/review.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF-") and len(r.content) > 20_000
    import shutil
    import subprocess
    if shutil.which("pdftotext"):   # poppler-utils: what the PDF says
        text = subprocess.run(["pdftotext", "-", "-"], input=r.content, capture_output=True, check=True).stdout.decode()
        assert "patient DEMO-008" in text and "Verified: complete, unaltered and signed by device key" in text
        assert "E-stop pressed" in text
    assert web.get("/patients/DEMO-009/review.pdf").status_code == 404   # no log uploaded yet


def test_the_pdf_export_reads_the_log_without_a_temporary_file(web, monkeypatch):
    """The signed chain comes from the database as text and is checked as it is: the
    patient's log is never written to the server's disk on the way (homeapp.bundle.parse_bundle)."""
    import tempfile

    def no_temporary_file(*args, **kwargs):
        raise AssertionError("the PDF export wrote a temporary file")
    monkeypatch.setattr(tempfile, "mkstemp", no_temporary_file)
    r = web.get("/patients/DEMO-008/review.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF-") and len(r.content) > 20_000
