"""The patient list in Swedish has no English flag text: the cached rows hold kinds,
codes and values, worded when the page is shown (the progression reasons included)."""
from __future__ import annotations

import html as h
import json
import re

import pytest

from clinic.models import WebPatientRow
from clinic.web.core import LANG_COOKIE

from .webkit import demo_app, sign_in

FLAG = re.compile(r'<li class="flag (\w+)" title="([^"]*)">([^<]*)<span class="why">([^<]*)</span></li>')


@pytest.fixture(scope="module")
def made_app(tmp_path_factory):
    return demo_app(tmp_path_factory.mktemp("flags_sv"), patients=12, days=42)


def _flags(page: str) -> list[tuple[str, str, str]]:
    return [(level, h.unescape(name).strip(), h.unescape(why)) for level, _, name, why in FLAG.findall(page)]


def test_a_swedish_patients_page_has_no_english_flag_text(made_app):
    app, _ = made_app
    web = sign_in(app)
    web.cookies.set(LANG_COOKIE, "en")
    english = _flags(web.get("/patients").text)
    web.cookies.set(LANG_COOKIE, "sv")
    swedish_page = h.unescape(web.get("/patients").text)
    swedish = _flags(web.get("/patients").text)
    assert len(english) == len(swedish) >= 8
    kinds = {name for _, name, _ in english}
    assert {"Ready to progress", "Pain rising", "Electrode problem", "Device not syncing"} <= kinds, kinds
    for _, name, why in english:
        assert name not in swedish_page, f"the flag {name!r} is in English on the Swedish page"
        assert why not in swedish_page, f"the explanation {why!r} is in English on the Swedish page"
    # each sentence of a reason, too (a progression flag joins several)
    for _, _, why in english:
        for sentence in re.split(r"(?<=\.) ", why):
            if len(sentence) > 12:
                assert sentence not in swedish_page, sentence
    progress = [why for _, name, why in swedish if name == "Redo att öka"]
    assert progress and all("Kanal" in w or "kontraktion" in w or "vilan" in w for w in progress), progress
    assert all("mA" in w for w in progress)


def test_the_cached_rows_keep_codes_not_words(made_app):
    app, _ = made_app
    sign_in(app).get("/patients")
    clinic = app.state.clinic
    with clinic.Session() as db:
        rows = [json.loads(r.row_json) for r in db.query(WebPatientRow)]
    flags = [f for r in rows for f in r["flags"]]
    progress = [f for f in flags if f["kind"] == "progress"]
    assert progress
    for f in progress:
        assert "reasons" not in f["values"] and "summary" not in f["values"]
        assert all(r["code"] and isinstance(r["values"], dict) for r in f["values"]["coded"])
    # the review's flags keep numbers and dates only (their English sentence is not cached)
    assert all("reason" not in f["values"] for f in flags)


def test_each_incident_has_one_swedish_word_in_the_review_the_patient_page_and_the_suggestion():
    import clinic.web.patient  # noqa: F401  (adds the patient page's words)
    from clinic.web import i18n, program
    from homeapp.report import INCIDENT_KINDS
    from homeapp.report_texts import SV as REPORT_SV
    for kind, word in INCIDENT_KINDS.items():
        assert REPORT_SV[word] != word, word
        assert i18n.gettext("sv", word) == program._INCIDENTS_SV[kind] == REPORT_SV[word], kind
