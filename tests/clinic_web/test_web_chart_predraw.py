"""The review charts' pre-draw (clinic/web/charts.py `ChartWarmer`), through the pages as
a browser asks for them, on SQLite and on PostgreSQL:

- a chart the warmer drew (in its separate drawing process) is what the patient page's
  picture serves, without drawing it again, also to another application process on the
  same database (as `serve --workers N` runs them);
- a new upload makes the stored picture stale: never served, deleted, drawn again;
- another clinician's patient is a 404 (and an audit row) even though its picture is stored;
- the store holds nothing of a patient once the patient is deleted.
"""
from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import delete, func, select

from clinic.app import create_app
from clinic.models import AuditEntry, Patient, WebReviewChart
from clinic.web import charts, demo, overview, review
from homeapp.report import review_png

from .test_web_patients import upload_one_more
from .webkit import sign_in

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'clinic.db'}"
    return request.getfixturevalue("postgres").new_database()


def _made(db_url: str):
    app = create_app(db_url)
    made = demo.fill(app.state.clinic, patients=3, days=14, other_patients=1)
    return app, made, db_url


@pytest.fixture
def made(db_url):
    return _made(db_url)


def _chart_src(web, patient_id: str) -> str:
    """The picture's address on the patient's page (its default range), as a browser finds it."""
    page = web.get(f"/patients/{patient_id}")
    assert page.status_code == 200
    found = re.search(r'<img class="charts" src="([^"]+)"', page.text)
    assert found, "the patient page shows no chart"
    return found.group(1).replace("&amp;", "&")


def _rows(svc, patient_id: str) -> list[WebReviewChart]:
    with svc.Session() as db:
        return list(db.scalars(select(WebReviewChart).join(Patient, Patient.id == WebReviewChart.patient_id)
                               .where(Patient.patient_id == patient_id)))


def test_a_predrawn_chart_is_served_by_the_page_without_drawing_again(made):
    app, _, db_url = made
    svc = app.state.clinic
    warmer = charts.ChartWarmer(svc, interval_s=3600, languages=("en",))
    try:
        done = warmer.run_once()
    finally:
        warmer.stop()
    assert done.drawn == 3 + 1 and not done.failed     # every patient's, the other clinician's too
    assert done.draw_cpu_s > 0                          # drawn in the separate process, and measured
    stored = _rows(svc, "DEMO-001")
    assert len(stored) == 1 and stored[0].png.startswith(PNG_MAGIC)
    # another application process's pages on the same database (as `serve --workers 2` runs them)
    other_worker = create_app(db_url)
    for app_ in (app, other_worker):
        web = sign_in(app_)
        drawn = charts.drawn
        src = _chart_src(web, "DEMO-001")
        r = web.get(src)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content == stored[0].png
        assert charts.drawn == drawn, "the page drew the chart the warmer had drawn"
    # and it is the report's own picture of that same review
    rng = review.parse_range(*re.search(r"from=([\d-]+)&to=([\d-]+)", src).groups())
    data = review.load(svc, svc.clinician(demo.DEMO_CLINICIAN), "DEMO-001", rng, contractions=False)
    assert review_png(data.review) == stored[0].png
    # a second pass finds everything drawn from the current data
    again = charts.ChartWarmer(svc, interval_s=3600, in_process=True, languages=("en",)).run_once()
    assert again.drawn == 0 and again.fresh == done.drawn


def test_a_new_upload_makes_the_stored_picture_stale(made):
    app, made_, _ = made
    svc = app.state.clinic
    charts.ChartWarmer(svc, interval_s=3600, in_process=True, languages=("en",)).run_once()
    web = sign_in(app)
    src = _chart_src(web, "DEMO-002")
    before = web.get(src).content
    [old] = _rows(svc, "DEMO-002")
    upload_one_more(svc, "DEMO-002", made_["device_keys"]["DEMO-002"], pain=8)
    # the page's picture is drawn anew from the new log, not the stored one
    drawn = charts.drawn
    after = web.get(src)
    assert after.status_code == 200 and after.content != before and charts.drawn == drawn + 1
    [new] = _rows(svc, "DEMO-002")
    assert new.log_mark != old.log_mark and new.png == after.content
    # the warmer alone (no page asked): the picture of older data is deleted and drawn anew
    upload_one_more(svc, "DEMO-002", made_["device_keys"]["DEMO-002"], pain=9)
    done = charts.ChartWarmer(svc, interval_s=3600, in_process=True, languages=("en",)).run_once()
    assert done.dropped == 1 and done.drawn == 1
    [newest] = _rows(svc, "DEMO-002")
    assert newest.log_mark != new.log_mark
    drawn = charts.drawn
    assert web.get(src).content == newest.png and charts.drawn == drawn


def test_another_clinicians_patient_is_404_even_when_its_chart_is_predrawn(made):
    app, _, _ = made
    svc = app.state.clinic
    charts.ChartWarmer(svc, interval_s=3600, in_process=True, languages=("en",)).run_once()
    [stored] = _rows(svc, "OTHER-001")
    src = _chart_src(sign_in(app, demo.OTHER_CLINICIAN), "OTHER-001")
    with svc.Session() as db:
        denied = db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.outcome != "ok"))
    r = sign_in(app).get(src)
    assert r.status_code == 404 and PNG_MAGIC not in r.content and stored.png not in r.content
    with svc.Session() as db:
        assert db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.outcome != "ok")) == denied + 1


def test_the_store_holds_nothing_of_a_deleted_patient(made):
    app, _, _ = made
    svc = app.state.clinic
    svc.add_patient("NEW-001", demo.DEMO_CLINICIAN)     # no device, no records: nothing else refers to it
    charts.ChartWarmer(svc, interval_s=3600, in_process=True, languages=("en",)).run_once()
    assert len(_rows(svc, "NEW-001")) == 1      # an empty review's chart
    with svc.Session.begin() as db:             # the service has no command for it yet: the database's own delete
        db.execute(delete(Patient).where(Patient.patient_id == "NEW-001"))
    with svc.Session() as db:
        assert db.scalar(select(func.count()).select_from(WebReviewChart)
                         .where(WebReviewChart.patient_id.not_in(select(Patient.id)))) == 0
    assert _rows(svc, "NEW-001") == []


def test_the_key_carries_the_language(tmp_path):
    """Each language has its own picture, pre-drawn, and neither page is served the other's."""
    app, _, _ = _made(f"sqlite:///{tmp_path / 'clinic.db'}")
    svc = app.state.clinic
    web = sign_in(app)
    sv = {"Accept-Language": "sv"}
    done = charts.ChartWarmer(svc, interval_s=3600, in_process=True, languages=("en", "sv")).run_once()
    assert done.drawn == 8 and not done.failed        # both languages for each of the 4 patients
    rows = {r.lang: r.png for r in _rows(svc, "DEMO-001")}
    assert sorted(rows) == ["en", "sv"] and rows["en"] != rows["sv"]
    src = _chart_src(web, "DEMO-001")
    drawn = charts.drawn
    assert web.get(src, headers=sv).content == rows["sv"] and web.get(src).content == rows["en"]
    assert charts.drawn == drawn


def test_a_wrong_setting_is_named_and_the_default_used(monkeypatch, caplog):
    monkeypatch.setenv("HOMEAPP_CLINIC_CHART_DAYS", "28,forever")
    with caplog.at_level("WARNING", logger="clinic.web.charts"):
        assert charts._setting("HOMEAPP_CLINIC_CHART_DAYS", "28", charts._days, "days") == (28,)
    assert "HOMEAPP_CLINIC_CHART_DAYS='28,forever'" in caplog.text
    monkeypatch.setenv("HOMEAPP_CLINIC_CHART_DAYS", "28,182")
    assert charts._setting("HOMEAPP_CLINIC_CHART_DAYS", "28", charts._days, "days") == (28, 182)
    monkeypatch.setenv("HOMEAPP_CLINIC_CHART_LANGUAGES", "de")
    assert charts._setting("HOMEAPP_CLINIC_CHART_LANGUAGES", "en,sv", charts._language, "languages") == ("en", "sv")


@pytest.mark.parametrize("make, logger, message", [
    (lambda: charts.ChartWarmer(None, interval_s=0.01, in_process=True), "clinic.web.charts",
     "pre-drawing the review charts failed (retried next pass)"),
    (lambda: overview.Warmer(None, interval_s=0.01), "clinic.web.overview",
     "warming the patient lists failed (retried next pass)"),
])
def test_a_warmers_failed_pass_is_logged_and_the_next_pass_runs(monkeypatch, caplog, make, logger, message):
    """Both background threads (the charts' pre-draw, the patient lists' warmer): a pass that
    raises is logged under the warmer's own module, the thread goes on, and `stop` ends it."""
    warmer = make()
    calls = []
    again = threading.Event()

    def run_once(**_):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        again.set()
        return charts.PredrawPass()
    monkeypatch.setattr(warmer, "run_once", run_once)
    with caplog.at_level("ERROR", logger=logger):
        warmer.start()
        assert again.wait(10), "no pass after the failed one"
        warmer.stop()
        warmer.thread.join(10)
    assert not warmer.thread.is_alive()
    assert [r.getMessage() for r in caplog.records if r.name == logger] == [message]


def test_a_changed_word_of_the_report_is_a_new_chart_version():
    # the charts are drawn in report_texts' words: a picture with an old word is never served
    import hashlib
    from pathlib import Path

    import matplotlib

    import homeapp.report
    import homeapp.report_texts
    from clinic.web import charts
    sources = Path(homeapp.report.__file__).read_bytes() + Path(homeapp.report_texts.__file__).read_bytes()
    assert charts.CHART_VERSION == hashlib.sha256(sources + matplotlib.__version__.encode()).hexdigest()[:16]
