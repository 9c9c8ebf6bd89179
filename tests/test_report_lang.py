"""The review's charts and PDF in English and Swedish from the one report module: every
text of homeapp/report_texts.py has its Swedish entry (same placeholders), a Swedish chart
and PDF carry no English word of the table, month and weekday names come from the table
(not the machine's locale), and the English pages are as before."""
from __future__ import annotations

import datetime as dt
import re
import string

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from homeapp import report_texts
from homeapp.bundle import read_bundle, write_bundle
from homeapp.report import _pdf_figure, review_figure, review_of_bundle, review_pdf, review_png
from schedules.signing import generate_keypair
from tests.bench.bench_report import synthetic_export
from tests.pdftext import matplotlib_pdf_strings, pdf_text
from tests.test_report import small_export

UTC = dt.timezone.utc


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_english_text_has_a_swedish_entry_with_the_same_placeholders():
    for english, swedish in report_texts.SV.items():
        assert swedish.strip(), english
        assert _fields(swedish) == _fields(english), english
    for key, forms in report_texts.PLURALS.items():
        assert set(forms) == set(report_texts.LANGUAGES), key
        for lang in report_texts.LANGUAGES:
            for form in forms[lang]:
                assert form.strip() and _fields(form) == _fields(key), (key, lang, form)
    for table in (report_texts.WEEKDAYS, report_texts.MONTHS):
        assert set(table) == set(report_texts.LANGUAGES)
        assert len(set(table["sv"])) == len(table["en"]) and set(table["sv"]).isdisjoint(table["en"])


def test_an_unknown_text_or_language_is_an_error_that_names_it():
    with pytest.raises(KeyError, match="no entry for 'Incidnets'"):
        report_texts.text("en", "Incidnets")
    with pytest.raises(ValueError, match="language 'de': the review is written in en or sv"):
        report_texts.text("de", "Incidents")


def test_dates_are_written_from_the_tables_not_the_locale():
    day = dt.date(2026, 5, 2)      # a Saturday in May: "May" is "maj"
    assert report_texts.day_month(day, "en", weekday=True) == "Sat 2 May"
    assert report_texts.day_month(day, "sv", weekday=True) == "lör 2 maj"
    assert report_texts.day_month(day, "sv", year=True) == "2 maj 2026"
    assert report_texts.month(day, "sv", year=True) == "maj 2026"


# --- the charts and the PDF ----------------------------------------------------------

@pytest.fixture(scope="module")
def keys():
    return generate_keypair()


@pytest.fixture(scope="module", params=["two weeks", "a year"])
def bundle(request, tmp_path_factory, keys):
    """Two weeks of one channel with every incident kind (day ticks with weekdays), and a
    year of two channels (month ticks, years)."""
    path = tmp_path_factory.mktemp("lang") / "b.bundle"
    if request.param == "two weeks":
        day0 = dt.date(2026, 3, 2)
        export = small_export(day0)
        created = dt.datetime.combine(day0 + dt.timedelta(days=13), dt.time(18), tzinfo=UTC)
    else:
        end = dt.date(2026, 11, 30)
        export = synthetic_export(320, end=end, contractions_per_session=3)
        created = dt.datetime.combine(end, dt.time(18), tzinfo=UTC)
    write_bundle(export, path, device_key=keys[0], created_at=created.isoformat())
    return read_bundle(path)


def figure_strings(fig) -> list[str]:
    """Every text the figure draws: titles, tick labels, legends, texts (after drawing, so
    the date formatters have run)."""
    FigureCanvasAgg(fig).draw()
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts + [ax.title, ax._left_title, ax._right_title]]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()]
    return [s for s in out if s]


def english_words() -> set[str]:
    """The words of the English table that its Swedish entries never use (so "min", "mA",
    "Borg", "NMES" do not count), and the English month and weekday names."""
    def words(text: str) -> set[str]:
        return set(re.findall(r"[A-Za-z][A-Za-z-]{2,}", re.sub(r"\{[^}]*\}", " ", text)))
    english = set().union(*(words(t) for t in report_texts.english_texts()))
    swedish = set().union(*(words(t) for t in list(report_texts.SV.values())
                            + [f for forms in report_texts.PLURALS.values() for f in forms["sv"]]))
    return (english - swedish) | set(report_texts.WEEKDAYS["en"]) | set(report_texts.MONTHS["en"])


def english_left(strings: list[str], *, data: str = "") -> set[str]:
    """English words in `strings`, beside those of the bundle's own data (labels, ids)."""
    allowed = set(re.findall(r"[A-Za-z][A-Za-z-]{2,}", data))
    found = set()
    for s in strings:
        found |= {w for w in re.findall(r"[A-Za-z][A-Za-z-]{2,}", s) if w in english_words() and w not in allowed}
    return found


def _data_words(review) -> str:
    """Words that come from the log itself (the prescription's labels and ids, the events'
    details, the patient's comments): shown as logged in either language."""
    import json
    return " ".join([json.dumps(review.rx_in_force)] + [detail for _, _, _, detail in review.incidents]
                    + [r.comment or "" for r in review.rows])


def test_the_swedish_chart_shows_no_english_text(bundle):
    review = review_of_bundle(bundle, tz=UTC)
    sv = figure_strings(review_figure(review, lang="sv"))
    en = figure_strings(review_figure(review))
    assert english_left(sv, data=_data_words(review)) == set(), sv
    # the check can fail: the English chart is full of such words
    assert len(english_left(en, data=_data_words(review))) > 20
    assert "Händelser" in sv and "Incidents" in en
    assert any(s in sv for s in ("mån", "tis", "ons")) and "Mon" in en


def test_the_swedish_pdf_shows_no_english_text(bundle):
    review = review_of_bundle(bundle, tz=UTC)
    for verified, problems in ((None, []), (True, []), (False, ["record 3 (session s-1): content changed"] * 4)):
        sv = figure_strings(_pdf_figure(bundle, review, verified=verified, problems=problems, lang="sv"))
        data = _data_words(review) + " ".join(problems)   # the verifier's own words stay as it wrote them
        assert english_left(sv, data=data) == set(), (verified, sv)
    # the PDF itself, read back
    text = pdf_text(review_pdf(bundle, review, verified=None, lang="sv"))
    assert "Gällande ordination" in text and "INTE VERIFIERAD" in text and "Händelser" in text
    assert english_left(text.splitlines(), data=_data_words(review)) == set()


def test_the_pdf_strings_reader_reads_matplotlibs_pdf(bundle):
    """The fallback of tests/pdftext.py, on a machine without poppler, reads the words."""
    review = review_of_bundle(bundle, tz=UTC)
    strings = matplotlib_pdf_strings(review_pdf(bundle, review, verified=True, lang="sv"))
    assert "Gällande ordination" in strings
    assert any("fullständig, oförändrad och signerad med enhetsnyckel" in s for s in strings), strings


def test_swedish_flags_and_prescription_lines():
    day0 = dt.date(2026, 3, 2)
    from homeapp.report import _rx_lines, review_flags, review_of_export
    review = review_of_export(small_export(day0), created_at=dt.datetime.combine(
        day0 + dt.timedelta(days=13), dt.time(18), tzinfo=UTC).isoformat(), tz=UTC)
    en = [f.reason for f in review.flags]
    sv = [f.reason for f in review_flags(review, lang="sv")]
    assert [f.kind for f in review_flags(review, lang="sv")] == [f.kind for f in review.flags]
    assert en == [f.reason for f in review_flags(review, lang="en")]   # the default is English, as before
    assert "E-stop pressed 1 time in 1 session, on 2026-03-05" in en
    assert "Nödstopp 1 gång under 1 pass, 2026-03-05" in sv
    assert "Följsamhet 71 % (10 av 14 ordinerade), 2026-03-02 till 2026-03-15: under 80 %" in sv
    lines = _rx_lines(review.rx_in_force, "sv")
    # channels numbered from 1, as on the device's screens
    assert "kanal 1 left <b>quad</b>: tak 60 mA" in lines
    assert any("pass/vecka, högst 1/dag" in line and "tillsyn ingen" in line for line in lines)


def test_the_chart_differs_by_language_and_english_is_the_default(bundle):
    review = review_of_bundle(bundle, tz=UTC)
    assert review_png(review) == review_png(review, lang="en") != review_png(review, lang="sv")
    with pytest.raises(ValueError, match="language 'fr'"):
        review_png(review, lang="fr")


def test_no_swedish_text_is_cut_at_the_figures_edges(bundle):
    """Swedish words are longer: every text of the charts and of the PDF page ends inside
    the figure (the incidents' names on the left, the titles on the right)."""
    review = review_of_bundle(bundle, tz=UTC)
    for fig in (review_figure(review, lang="sv"), _pdf_figure(bundle, review, verified=None, problems=[], lang="sv")):
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.canvas.draw()
        texts = list(fig.texts)
        for ax in fig.axes:
            texts += ax.texts + [ax.title, ax._left_title] + ax.get_xticklabels() + ax.get_yticklabels()
            if ax.get_legend():
                texts += [ax.get_legend()]
        for t in texts:
            if hasattr(t, "get_text") and not t.get_text():
                continue
            box = t.get_window_extent(renderer)
            assert fig.bbox.x0 - 1 <= box.x0 and box.x1 <= fig.bbox.x1 + 1, getattr(t, "get_text", lambda: t)()


@pytest.mark.parametrize("adherence", [
    dict(first_day=None, last_day=None, days=0, due=0, done=0, extra=0, ratio=None),
    dict(first_day=dt.date(2026, 3, 2), last_day=dt.date(2026, 3, 4), days=3, due=0, done=0, extra=1, ratio=None),
    dict(first_day=dt.date(2026, 3, 2), last_day=dt.date(2026, 3, 2), days=1, due=1, done=1, extra=2, ratio=1.0),
    dict(first_day=dt.date(2026, 3, 2), last_day=dt.date(2026, 3, 15), days=14, due=14, done=10, extra=0,
         ratio=10 / 14),
])
def test_adherence_in_english_is_what_schedules_says(adherence):
    """The report words adherence from its table; in English exactly as
    schedules.adherence's own describe() and period (which other pages use)."""
    from homeapp.report import adherence_period, adherence_text
    from schedules.adherence import PeriodAdherence
    a = PeriodAdherence(**adherence)
    assert (adherence_text(a), adherence_period(a)) == (a.describe(), a.period)
    assert english_left([adherence_text(a, "sv"), adherence_period(a, "sv")]) == set()


@pytest.mark.parametrize("status, ended, swedish", [
    ("stopped", "stopped: stopped by the patient", "stoppat: stoppat av patienten"),
    ("aborted", "aborted: e-stop pressed", "avbrutet: nödstopp tryckt"),
    ("aborted", "aborted: fault: board reports over-current", "avbrutet: fel: board reports over-current"),
    ("aborted", "aborted: fault", "avbrutet: fel"),
    ("stopped", "stopped: paused too long", "stoppat: paused too long"),    # not one of the engine's fixed words
    ("interrupted", "interrupted (the app stopped during the session)", "avbrutet (appen stannade under passet)"),
    ("completed", "completed", "genomfört"),
])
def test_how_a_session_ended_in_swedish(status, ended, swedish):
    from homeapp.report import SessionRow, ended_text
    row = SessionRow(session_id="s", started=dt.datetime(2026, 3, 2, 9, tzinfo=UTC), duration_min=1.0,
                     peak_ma=(20.0,), done=1, planned=1, pain=None, effort=None, comment=None, status=status,
                     ended=ended, problems=())
    assert ended_text(row, "sv") == swedish and ended_text(row) == ended


# --- the HTML page and the command ---------------------------------------------------------

def _page_text(page: str) -> list[str]:
    """The page's visible texts and its image's alt text (tags, style and the picture dropped)."""
    import html as h
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    alts = re.findall(r'alt="([^"]*)"', body)
    return [h.unescape(t) for t in re.split(r"<[^>]+>", body) + alts if t.strip()]


def test_cli_report_lang_sv_writes_a_swedish_page_charts_and_pdf(tmp_path, keys, capsys):
    from homeapp.cli import main
    from schedules.signing import save_public_key
    day0 = dt.date(2026, 3, 2)
    write_bundle(small_export(day0), tmp_path / "b.bundle", device_key=keys[0],
                 created_at=dt.datetime.combine(day0 + dt.timedelta(days=13), dt.time(18), tzinfo=UTC).isoformat())
    save_public_key(tmp_path / "device.pub", keys[1])
    args = ["report", str(tmp_path / "b.bundle"), "--device-key", str(tmp_path / "device.pub")]
    assert main(args + ["--out", str(tmp_path / "sv.html"), "--pdf", str(tmp_path / "sv.pdf"), "--lang", "sv"]) == 0
    assert main(args + ["--out", str(tmp_path / "en.html")]) == 0
    sv_page = (tmp_path / "sv.html").read_text(encoding="utf-8")
    en_page = (tmp_path / "en.html").read_text(encoding="utf-8")
    review = review_of_bundle(read_bundle(tmp_path / "b.bundle"))
    data = _data_words(review) + " b.bundle"
    assert '<html lang="sv">' in sv_page and '<html lang="en">' in en_page
    assert english_left(_page_text(sv_page), data=data) == set(), english_left(_page_text(sv_page), data=data)
    assert len(english_left(_page_text(en_page), data=data)) > 30
    assert 'class="banner ok">Verifierad: fullständig, oförändrad och signerad med enhetsnyckel' in sv_page
    assert "Nödstopp 1 gång under 1 pass, 2026-03-05" in sv_page and "<th>högsta kanal 1 (left" in sv_page
    # the embedded charts are the Swedish ones, and so is the PDF
    import base64
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', sv_page).group(1))
    assert png == review_png(review, lang="sv")
    text = pdf_text((tmp_path / "sv.pdf").read_bytes())
    assert "Gällande ordination" in text and english_left(text.splitlines(), data=data) == set()


def test_cli_report_refuses_a_language_it_does_not_have(tmp_path, capsys):
    from homeapp.cli import main
    with pytest.raises(SystemExit) as stop:
        main(["report", str(tmp_path / "b"), "--out", str(tmp_path / "r.html"), "--lang", "de"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--lang: invalid choice: 'de' (choose from 'en', 'sv')" in err
    assert not (tmp_path / "r.html").exists()


def test_a_bundle_without_sessions_reports_in_swedish_too(tmp_path, keys):
    from homeapp.report import build_report
    write_bundle({"sessions": []}, tmp_path / "empty.bundle", device_key=keys[0])
    result = build_report(tmp_path / "empty.bundle", out_html=tmp_path / "r.html", out_pdf=tmp_path / "r.pdf",
                          device_public_key=keys[1], lang="sv")
    assert result.verified and result.sessions == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "ingen ordination i loggen" in page and "Inget flaggat" in page
    assert english_left(_page_text(page), data="empty.bundle") == set()
    review = review_of_bundle(read_bundle(tmp_path / "empty.bundle"))
    assert "inga pass i loggen" in figure_strings(review_figure(review, lang="sv"))
    text = pdf_text((tmp_path / "r.pdf").read_bytes())
    assert "inga pass" in text and english_left(text.splitlines()) == set()
