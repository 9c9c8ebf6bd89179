"""Adherence and schedule checks: pure arithmetic over (started_at, status) pairs.

Days are the patient's days: each aware `started_at` is converted to `tz` (None = the
device's local time zone) before taking its date; weeks are ISO weeks (Monday to Sunday).

Rules where the prescription format is silent:
- `weekly_adherence`: one row per ISO week from the week of `issued` to the week of
  min(today, expires). `done` counts `completed` sessions only. `prescribed` is
  `sessions_per_week` prorated by the days of that week the prescription covered up to
  today: `sessions_per_week * days / 7`, rounded to 2 decimals (a prescription issued on a
  Friday owes 3/7 of a week's sessions that week; the current week counts days through
  today). It never exceeds `max_sessions_per_day * days`.
- `schedule_allows`: every session that started counts (whatever its status, also one
  that was interrupted or is still running): the caps are about stimulation given, and a
  started session may have given some. The weekly cap is the full `sessions_per_week`
  in every week, partial or not.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Sequence

from .model import Prescription

SessionStart = tuple[dt.datetime, str]


@dataclass(frozen=True)
class WeekAdherence:
    week: str              # ISO week, "2026-W47"
    first_day: dt.date     # first day of the week the prescription covered
    last_day: dt.date      # last day counted (through today at most)
    days: int              # days counted
    prescribed: float      # sessions owed those days (prorated)
    done: int              # completed sessions started those days
    ratio: float | None    # done / prescribed (None when nothing was owed)


def _local(when: dt.datetime, tz: dt.tzinfo | None) -> dt.datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"session start {when.isoformat()} carries no time zone")
    return when.astimezone(tz)


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _iso_week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def weekly_adherence(rx: Prescription, session_starts: Iterable[SessionStart], *,
                     today: dt.date, tz: dt.tzinfo | None = None) -> list[WeekAdherence]:
    """Done vs prescribed per ISO week, oldest first (see the module's rules)."""
    last = min(today, rx.expires)
    if last < rx.issued:
        return []
    completed_days = [_local(t, tz).date() for t, status in session_starts if status == "completed"]
    weeks = []
    monday = _monday(rx.issued)
    while monday <= last:
        first_day = max(monday, rx.issued)
        last_day = min(monday + dt.timedelta(days=6), last)
        days = (last_day - first_day).days + 1
        prescribed = round(min(rx.sessions_per_week * days / 7, rx.max_sessions_per_day * days), 2)
        done = sum(1 for d in completed_days if first_day <= d <= last_day)
        weeks.append(WeekAdherence(
            week=_iso_week(monday), first_day=first_day, last_day=last_day, days=days,
            prescribed=prescribed, done=done,
            ratio=round(done / prescribed, 2) if prescribed > 0 else None))
        monday += dt.timedelta(days=7)
    return weeks


def _fmt(when: dt.datetime) -> str:
    return when.strftime("%A %Y-%m-%d %H:%M")


def _ceil_minute(when: dt.datetime) -> dt.datetime:
    """Round up, so "may start at 15:30" is never a minute early."""
    floor = when.replace(second=0, microsecond=0)
    return floor if floor == when else floor + dt.timedelta(minutes=1)


def _midnight(day: dt.date, tz: dt.tzinfo | None, like: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz or like.tzinfo)


def _blocks(rx: Prescription, session_starts: Sequence[SessionStart], now: dt.datetime,
            tz: dt.tzinfo | None) -> list[tuple[str, dt.datetime | None]]:
    """(reason, earliest time this rule allows a session, None = never) per rule broken."""
    local_now = _local(now, tz)
    today = local_now.date()
    starts = sorted(_local(t, tz) for t, _ in session_starts)
    out: list[tuple[str, dt.datetime | None]] = []
    if today < rx.issued:
        out.append((f"the prescription is valid from {rx.issued.isoformat()}; the first "
                    f"session may start on {rx.issued.strftime('%A %Y-%m-%d')}",
                    _midnight(rx.issued, tz, local_now)))
    if today > rx.expires:
        out.append((f"the prescription expired on {rx.expires.isoformat()}; no session may "
                    "start until your clinician issues a new one", None))
    n_today = sum(1 for s in starts if s.date() == today)
    if n_today >= rx.max_sessions_per_day:
        tomorrow = today + dt.timedelta(days=1)
        out.append((f"{n_today} session{'s' if n_today != 1 else ''} already today; the "
                    f"prescription allows {rx.max_sessions_per_day} a day; the next may start "
                    f"tomorrow, {tomorrow.strftime('%A %Y-%m-%d')}",
                    _midnight(tomorrow, tz, local_now)))
    if starts and rx.min_hours_between > 0:
        earliest = _ceil_minute(starts[-1] + dt.timedelta(hours=rx.min_hours_between))
        if earliest > local_now:
            out.append((f"the last session started at {_fmt(starts[-1])}; the prescription "
                        f"asks for {rx.min_hours_between:g} hours between sessions; the next "
                        f"may start at {_fmt(earliest)}", earliest))
    monday = _monday(today)
    n_week = sum(1 for s in starts if monday <= s.date() <= today)
    if n_week >= rx.sessions_per_week:
        next_monday = monday + dt.timedelta(days=7)
        out.append((f"{n_week} session{'s' if n_week != 1 else ''} already this week (from "
                    f"Monday {monday.isoformat()}); the prescription allows "
                    f"{rx.sessions_per_week} a week; the next may start on Monday "
                    f"{next_monday.isoformat()}", _midnight(next_monday, tz, local_now)))
    return out


def schedule_allows(rx: Prescription, session_starts: Sequence[SessionStart], *,
                    now: dt.datetime, tz: dt.tzinfo | None = None) -> list[str]:
    """Why a session of `rx` may not start at `now` (empty: it may). `session_starts`
    are this prescription's sessions (`Store.session_starts(rx.id)`)."""
    return [reason for reason, _ in _blocks(rx, session_starts, now, tz)]


def next_session_at(rx: Prescription, session_starts: Sequence[SessionStart], *,
                    now: dt.datetime, tz: dt.tzinfo | None = None) -> dt.datetime | None:
    """The earliest time every rule allows a session: `now` if one may start now, None
    if none ever may under this prescription. Each rule, once met, stays met while no
    session starts, so the earliest time is the latest of the rules' times."""
    blocks = _blocks(rx, session_starts, now, tz)
    if not blocks:
        return _local(now, tz)
    times = [when for _, when in blocks]
    if any(t is None for t in times):
        return None
    earliest = max(t for t in times if t is not None)
    return None if earliest.date() > rx.expires else earliest

