"""Adherence per ISO week and the schedule rules that decide whether a session may start."""
from __future__ import annotations

import datetime as dt

import pytest

from schedules.adherence import next_session_at, schedule_allows, weekly_adherence
from schedules.model import Block, Channel, Prescription

UTC = dt.timezone.utc


def _rx(**changes) -> Prescription:
    # issued Friday 2026-11-20 (ISO week 47), expires Wednesday 2026-12-09 (week 50)
    fields = dict(id="rx-0001", patient_id="P-0042", clinician_id="C-0007",
                  issued=dt.date(2026, 11, 20), expires=dt.date(2026, 12, 9),
                  sessions_per_week=5, max_sessions_per_day=1, min_hours_between=4,
                  supervision="none", channels=(Channel("left quadriceps", 60),),
                  blocks=(Block("strength", 15, 50, 300, 10, 50, 2, 1),))
    fields.update(changes)
    return Prescription(**fields)


def at(day: int, hour: int = 9, minute: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


# ---------------------------------------------------------------- weekly adherence

def test_weeks_from_issue_to_today_prorating_partial_weeks():
    starts = [(at(20), "completed"), (at(21), "completed"), (at(22), "stopped"),
              (at(23), "completed"), (at(24), "interrupted"), (at(25), "completed")]
    weeks = weekly_adherence(_rx(), starts, today=dt.date(2026, 11, 25), tz=UTC)
    assert [w.week for w in weeks] == ["2026-W47", "2026-W48"]
    first, current = weeks
    # Friday to Sunday: 3 of 7 days of 5 a week; only completed sessions count as done
    assert (first.first_day, first.last_day, first.days) == (dt.date(2026, 11, 20), dt.date(2026, 11, 22), 3)
    assert (first.prescribed, first.done, first.ratio) == (2.14, 2, 0.93)
    # the current week counts Monday to today (Wednesday)
    assert (current.days, current.prescribed, current.done) == (3, 2.14, 2)


def test_weeks_stop_at_expiry_and_full_weeks_owe_the_full_count():
    weeks = weekly_adherence(_rx(), [], today=dt.date(2027, 1, 10), tz=UTC)
    assert [w.week for w in weeks] == ["2026-W47", "2026-W48", "2026-W49", "2026-W50"]
    assert [w.prescribed for w in weeks] == [2.14, 5.0, 5.0, 2.14]
    assert weeks[-1].last_day == dt.date(2026, 12, 9)
    assert all(w.done == 0 and w.ratio == 0 for w in weeks)


def test_proration_never_owes_more_than_the_daily_cap_allows():
    rx = _rx(sessions_per_week=14, max_sessions_per_day=1)
    (week,) = weekly_adherence(rx, [], today=dt.date(2026, 11, 20), tz=UTC)
    assert week.days == 1 and week.prescribed == 1.0


def test_no_weeks_before_the_prescription_is_issued():
    assert weekly_adherence(_rx(), [], today=dt.date(2026, 11, 19), tz=UTC) == []


def test_sessions_outside_the_prescription_do_not_count():
    starts = [(at(19), "completed"), (at(10, month=12), "completed")]
    weeks = weekly_adherence(_rx(), starts, today=dt.date(2026, 12, 31), tz=UTC)
    assert sum(w.done for w in weeks) == 0


def test_days_are_the_patients_local_days():
    # 23:30 UTC on Sunday is already Monday in UTC+2: it belongs to the next week
    plus2 = dt.timezone(dt.timedelta(hours=2))
    starts = [(at(22, 23, 30), "completed")]
    w47, w48 = weekly_adherence(_rx(), starts, today=dt.date(2026, 11, 23), tz=plus2)
    assert (w47.done, w48.done) == (0, 1)


# ---------------------------------------------------------------- schedule checks

def test_allowed_when_no_rule_is_broken():
    assert schedule_allows(_rx(), [], now=at(20, 10), tz=UTC) == []
    assert next_session_at(_rx(), [], now=at(20, 10), tz=UTC) == at(20, 10)


def test_not_yet_valid_and_expired():
    (reason,) = schedule_allows(_rx(), [], now=at(19, 10), tz=UTC)
    assert reason == ("the prescription is valid from 2026-11-20; the first session may "
                      "start on Friday 2026-11-20")
    assert next_session_at(_rx(), [], now=at(19, 10), tz=UTC) == at(20, 0)
    (reason,) = schedule_allows(_rx(), [], now=at(10, 8, month=12), tz=UTC)
    assert "expired on 2026-12-09" in reason and "new one" in reason
    assert next_session_at(_rx(), [], now=at(10, 8, month=12), tz=UTC) is None


def test_daily_cap_counts_every_started_session():
    rx = _rx(max_sessions_per_day=2, min_hours_between=0)
    starts = [(at(23, 8), "interrupted"), (at(23, 12), "aborted")]
    (reason,) = schedule_allows(rx, starts, now=at(23, 18), tz=UTC)
    assert reason == ("2 sessions already today; the prescription allows 2 a day; the next "
                      "may start tomorrow, Tuesday 2026-11-24")
    assert schedule_allows(rx, starts[:1], now=at(23, 18), tz=UTC) == []


def test_hours_between_sessions_say_when_the_next_may_start():
    rx = _rx(max_sessions_per_day=3, min_hours_between=4.5)
    starts = [(dt.datetime(2026, 11, 23, 8, 0, 30, tzinfo=UTC), "completed")]
    (reason,) = schedule_allows(rx, starts, now=at(23, 12), tz=UTC)
    assert reason == ("the last session started at Monday 2026-11-23 08:00; the prescription "
                      "asks for 4.5 hours between sessions; the next may start at "
                      "Monday 2026-11-23 12:31")  # rounded up, never early
    assert schedule_allows(rx, starts, now=at(23, 12, 31), tz=UTC) == []


def test_weekly_cap_in_the_iso_week():
    rx = _rx(sessions_per_week=2, min_hours_between=0)
    starts = [(at(23), "completed"), (at(24), "stopped")]
    (reason,) = schedule_allows(rx, starts, now=at(26, 10), tz=UTC)
    assert reason == ("2 sessions already this week (from Monday 2026-11-23); the prescription "
                      "allows 2 a week; the next may start on Monday 2026-11-30")
    assert next_session_at(rx, starts, now=at(26, 10), tz=UTC) == at(30, 0)
    assert schedule_allows(rx, starts, now=at(30, 0), tz=UTC) == []


def test_next_session_is_the_latest_of_the_rules_and_none_after_expiry():
    rx = _rx(sessions_per_week=2, min_hours_between=4)
    starts = [(at(7, 8, month=12), "completed"), (at(8, 22, month=12), "completed")]
    reasons = schedule_allows(rx, starts, now=at(8, 23, month=12), tz=UTC)
    assert len(reasons) == 3  # daily, hours, weekly
    # the weekly cap lifts on Monday 14 December, after the prescription expired
    assert next_session_at(rx, starts, now=at(8, 23, month=12), tz=UTC) is None


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="time zone"):
        schedule_allows(_rx(), [(dt.datetime(2026, 11, 21, 9), "completed")], now=at(21), tz=UTC)
