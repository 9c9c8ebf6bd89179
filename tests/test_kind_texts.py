"""The one table of what the engine's kinds say to the patient (homeapp/ui/kind_texts.py):
every kind has its text, in every language, and a text never falls back to the log's
English for a kind the engine gives. No display needed."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from homeapp.state import Alert, AlertKind, EventKind, Notice, NoticeKind, Reason, RefusalKind
from homeapp.ui import i18n
from homeapp.ui.kind_texts import (ALERT_TEXTS, EVENT_TEXTS, NOTICE_TEXTS, REFUSAL_TEXTS, alert_texts,
                                   event_text, notice_text, refusal_text)


@pytest.fixture
def swedish():
    i18n.set_language("sv")
    yield
    i18n.set_language("en")


@pytest.fixture
def svc():
    rx = SimpleNamespace(expires=dt.date(2027, 2, 20), starts_on=dt.date(2026, 12, 1))
    return SimpleNamespace(rx=rx, due_text_params=lambda: {"when": "later", "at": "14:00"})


def test_every_refusal_notice_and_alert_kind_has_a_text():
    assert set(REFUSAL_TEXTS) == set(RefusalKind)
    assert set(NOTICE_TEXTS) == set(NoticeKind)
    assert set(ALERT_TEXTS) == set(AlertKind)
    assert set(EVENT_TEXTS) <= set(EventKind)


def test_each_refusal_is_said_in_the_patients_language_not_the_logs_english(swedish, svc):
    for kind in RefusalKind:
        reason = Reason("the log's English sentence", kind, date=dt.date(2026, 12, 1))
        text = refusal_text(reason, svc)
        assert text and text != "the log's English sentence", kind
    assert refusal_text("a plain string", svc) == "a plain string"


def test_each_notice_and_alert_is_said_in_swedish(swedish):
    english = {}
    for kind in NoticeKind:
        text = notice_text(Notice(kind, {"max_ma": 40.0, "labels": "vänster"}, "the log's English"))
        assert text and text != "the log's English", kind
        english[kind] = text
    i18n.set_language("en")
    assert notice_text(Notice(NoticeKind.AT_CAP, {"max_ma": 40.0}, "x")) != english[NoticeKind.AT_CAP]
    i18n.set_language("sv")
    channels = [SimpleNamespace(label="vänster lår")]
    for kind in AlertKind:
        title, what, steps = alert_texts(Alert(kind, channel=0), channels)
        assert title and what and steps
    assert "vänster lår" in alert_texts(Alert(AlertKind.LEAD_OFF, channel=0), channels)[1]


def test_logged_incidents_read_as_the_caregiver_reads_them():
    assert event_text("lead_off", {"channel": 1}) == "Electrode 2 lost contact"
    assert event_text("refused", {}) == "Request refused (outside the prescription)"
    assert event_text("block", {}) == "block"
