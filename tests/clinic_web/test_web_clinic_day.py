"""The pages judge "today" in the clinic's time zone ($HOMEAPP_CLINIC_TZ, else the
machine's): a new program's issued date, the patients page's "this week", and the service
accepting a program issued after the clinic's midnight, tested half an hour after midnight
in Stockholm (still the day before in UTC) and late evening in New York (already the next
day in UTC), on a fixed clock."""
from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest
from cryptography.hazmat.primitives import serialization

from clinic import cli, timeutil
from clinic.app import create_app
from clinic.service import CLI
from clinic.web import demo
from schedules.signing import generate_keypair, sign_prescription
from tests.clinic.kit import PASSWORD

from .test_program_pages import form_of, token
from .webkit import sign_in

#: Sunday 2026-12-06 23:30 UTC: Monday 00:30 in Stockholm.
STOCKHOLM_AFTER_MIDNIGHT = dt.datetime(2026, 12, 6, 23, 30, tzinfo=dt.timezone.utc)
#: Monday 2026-12-07 03:30 UTC: Sunday 22:30 in New York.
NEW_YORK_EVENING = dt.datetime(2026, 12, 7, 3, 30, tzinfo=dt.timezone.utc)


def _at(monkeypatch, when: dt.datetime, zone: str) -> None:
    import clinic.service
    monkeypatch.setattr(timeutil, "utcnow", lambda: when)
    monkeypatch.setattr(clinic.service, "utcnow", lambda: when)
    monkeypatch.setenv(timeutil.CLINIC_TZ_ENV, zone)


@pytest.fixture
def site(tmp_path):
    from fastapi.testclient import TestClient
    app = create_app(f"sqlite:///{tmp_path / 'clinic.db'}")
    clinic = app.state.clinic
    clinic.add_clinician("alice", PASSWORD)
    clinic.add_patient("P-1", "alice")
    private, public = generate_keypair()
    clinic.add_clinician_key("alice", public.public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))

    def signed_in_client() -> TestClient:   # after the clock is set (a session lasts 12 hours)
        client = TestClient(app, base_url="https://testserver")
        r = client.post("/signin", data={"username": "alice", "password": PASSWORD,
                                         "csrf_token": token(client.get("/signin").text)})
        assert r.status_code == 200
        return client
    return signed_in_client, clinic, private


@pytest.mark.parametrize("when, zone, day", [
    (STOCKHOLM_AFTER_MIDNIGHT, "Europe/Stockholm", "2026-12-07"),
    (STOCKHOLM_AFTER_MIDNIGHT, "UTC", "2026-12-06"),
    (NEW_YORK_EVENING, "America/New_York", "2026-12-06"),
    (NEW_YORK_EVENING, "UTC", "2026-12-07"),
])
def test_a_new_program_is_issued_on_the_clinics_day(site, monkeypatch, when, zone, day):
    signed_in_client, clinic, private = site
    _at(monkeypatch, when, zone)
    client = signed_in_client()
    page = client.get("/patients/P-1/program?start=preset&preset=circulation").text
    form = form_of(page)
    assert form["issued"] == day
    # checked, signed and published on that day: the service takes it (not "in the future")
    r = client.post("/patients/P-1/program", data=form)
    assert r.status_code == 200 and "data-canonical" in r.text, r.text[:2000]
    draft = json.loads(html.unescape(re.search(r'name="draft" value="([^"]*)"', r.text).group(1)))
    signature = sign_prescription(draft, private)["signature"]
    r = client.post("/patients/P-1/program/publish", data={"draft": json.dumps(draft), "csrf_token": token(r.text),
                                                          "signature": json.dumps(signature)})
    assert r.status_code == 200 and "/program/status" in str(r.url), r.text[:2000]
    assert [p["id"] for p in clinic.prescriptions(CLI, "P-1")] == [draft["id"]]


def test_this_week_begins_at_the_clinics_monday(tmp_path, monkeypatch):
    # a demo whose days end on Sunday 2026-12-06 (the adherent patient trained that week)
    app = create_app(f"sqlite:///{tmp_path / 'sunday.db'}")
    demo.fill(app.state.clinic, patients=3, days=21, today=dt.date(2026, 12, 6))

    def week_of(zone: str) -> tuple[str, str]:
        _at(monkeypatch, STOCKHOLM_AFTER_MIDNIGHT, zone)
        web = sign_in(app)
        page = web.get("/patients?sort=patient&dir=asc").text
        row = re.search(r'DEMO-001</a></th>(.*?)</tr>', page, re.S).group(1)
        cells = re.findall(r'<td class="n">(.*?)</td>', row, re.S)
        return re.sub(r"<[^>]+>", " ", cells[0]).split()[0], re.sub(r"<[^>]+>", "", cells[1]).strip()

    done_utc, last_utc = week_of("UTC")                 # still Sunday: the week that ends today
    done_sthlm, last_sthlm = week_of("Europe/Stockholm")   # Monday: a new week, nothing done yet
    assert int(done_utc) >= 3 and done_sthlm == "0", (done_utc, done_sthlm)
    assert last_utc == last_sthlm and re.fullmatch(r"2026-1[12]-[0-3][0-9]", last_utc)


def test_a_zone_that_is_no_zone_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setenv(timeutil.CLINIC_TZ_ENV, "Europe/Stockhom")
    code = cli.main(["serve", "--db", "sqlite:///:memory:"])
    err = capsys.readouterr().err
    assert code == 2 and "Europe/Stockhom" in err and "IANA" in err and "Traceback" not in err, err
