"""The review's charts are drawn once per log: the picture served is exactly
homeapp/report.py's `review_png` of the review; asked again for the same log and range it
is not drawn again; a new upload, another range draw again; the patient page starts the
drawing so the browser's request finds it; another clinician's patient is still a 404
before any kept picture is looked at."""
from __future__ import annotations

import datetime as dt

import pytest

from clinic.web import charts, demo, review
from homeapp.report import review_png

from .test_web_patients import upload_one_more
from .webkit import demo_app, sign_in


@pytest.fixture(scope="module")
def made_app(tmp_path_factory):
    return demo_app(tmp_path_factory.mktemp("charts"), patients=3, days=28)


def _png(web, pid: str, first: dt.date, last: dt.date):
    return web.get(f"/patients/{pid}/review.png?from={first}&to={last}")


def test_a_chart_is_drawn_once_per_log_and_is_the_reports_own(made_app):
    app, made = made_app
    charts.forget(app.state.clinic)
    web = sign_in(app)
    today = dt.date.today()
    first = today - dt.timedelta(days=20)
    drawn = charts.drawn
    r = _png(web, "DEMO-001", first, today)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert charts.drawn == drawn + 1
    # the same bytes as the report module's own function over the same review
    svc = app.state.clinic
    data = review.load(svc, svc.clinician(demo.DEMO_CLINICIAN), "DEMO-001", review.parse_range(
        first.isoformat(), today.isoformat()), contractions=False)
    assert r.content == review_png(data.review)
    # again: served from what was drawn; still audited as a chart read each time
    from clinic.models import AuditEntry
    with svc.Session() as db:
        audits = db.query(AuditEntry).filter(AuditEntry.action == "web_review_chart").count()
    assert _png(web, "DEMO-001", first, today).content == r.content and charts.drawn == drawn + 1
    with svc.Session() as db:
        assert db.query(AuditEntry).filter(AuditEntry.action == "web_review_chart").count() == audits + 1
    # another range, or a new record from the device: drawn again
    assert _png(web, "DEMO-001", first + dt.timedelta(days=1), today).status_code == 200
    assert charts.drawn == drawn + 2
    upload_one_more(svc, "DEMO-001", made["device_keys"]["DEMO-001"], pain=7)
    after = _png(web, "DEMO-001", first, today)
    assert charts.drawn == drawn + 3 and after.content != r.content


def test_the_patient_page_starts_its_chart_for_the_browser(made_app):
    app, _ = made_app
    charts.forget(app.state.clinic)
    web = sign_in(app)
    today = dt.date.today()
    first = today - dt.timedelta(days=13)
    drawn = charts.drawn
    assert web.get(f"/patients/DEMO-002?from={first}&to={today}").status_code == 200
    r = _png(web, "DEMO-002", first, today)     # waits for the background drawing if still under way
    assert r.status_code == 200 and charts.drawn == drawn + 1


def test_another_clinicians_patient_is_404_even_when_its_chart_is_kept(made_app):
    app, _ = made_app
    other = sign_in(app, demo.OTHER_CLINICIAN)
    today = dt.date.today()
    first = today - dt.timedelta(days=20)
    assert _png(other, "OTHER-001", first, today).status_code == 200
    web = sign_in(app)
    assert _png(web, "OTHER-001", first, today).status_code == 404
