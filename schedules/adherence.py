"""Adherence and schedule checks: pure arithmetic over (started_at, status) pairs.

Days are the patient's days: each aware `started_at` is converted to `tz` (None = the
device's local time zone) before taking its date; weeks are ISO weeks (Monday to Sunday).

Rules where the prescription format is silent:
- Sessions are due from the prescription's first day (`starts_on`: `valid_from` when set,
  else `issued`) through `expires`, never outside it.
- `weekly_adherence`: one row per ISO week from the week of `starts_on` (or of `from_day`
  when later) to the week of min(today, expires). `done` counts `completed` sessions
  only. `prescribed` is `sessions_per_week` prorated by the days of that week the
  prescription covered up to today: `sessions_per_week * days / 7`, rounded to 2
  decimals (a prescription starting on a Friday owes 3/7 of a week's sessions that week;
  the current week counts days through today). It never exceeds
  `max_sessions_per_day * days`. `counted` is what adherence may credit: at most
  `max_sessions_per_day` completed sessions a day, and at most the week's due sessions
  rounded up; `ratio` = counted / prescribed, never above 1.
- `period_adherence`: sessions done of sessions due over a stated period (the days of the
  period the prescription covered): due = the weeks' prorated counts summed and rounded
  to whole sessions; done = the weeks' `counted` summed, never above due; sessions beyond
  it are `extra`. The ratio therefore never exceeds 100%.
- `schedule_allows`: every session that started counts (whatever its status, also one
  that was interrupted or is still running): the caps are about stimulation given, and a
  started session may have given some. The weekly cap is the full `sessions_per_week`
  in every week, partial or not. Except: a session that ended `aborted` (an e-stop, a
  fault, an electrode lost) within `EARLY_ABORT_S` of its start does not count against the
  caps (`ended_early_by_safety_stop`), so a slip in the first minutes does not use up the
  day's session; the engine logs a start after one as `restart_allowed`.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter
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
    ratio: float | None    # counted / prescribed, at most 1 (None when nothing was owed)
    counted: int = 0       # done, at most max_sessions_per_day a day and the week's due rounded up


@dataclass(frozen=True)
class PeriodAdherence:
    """Sessions done of sessions due over a stated period (see the module's rules)."""

    first_day: dt.date | None   # the period the figure covers (None: no day was covered)
    last_day: dt.date | None
    days: int
    due: int                    # whole sessions due over the period
    done: int                   # completed sessions credited, never above `due`
    extra: int                  # completed sessions beyond what was due or allowed a day
    ratio: float | None         # done / due (None when nothing was due), never above 1

    @property
    def period(self) -> str:
        """`2026-11-20 to 2026-12-09`, or `2026-12-05` for one day."""
        if self.first_day is None or self.last_day is None:
            return "no day of the prescription"
        if self.first_day == self.last_day:
            return self.first_day.isoformat()
        return f"{self.first_day.isoformat()} to {self.last_day.isoformat()}"

    def describe(self) -> str:
        """`71% (10 of 14 due)`, or why there is no percentage."""
        if self.ratio is None:
            if self.days == 0:
                return "n/a (no day of the prescription in this period)"
            return f"n/a (no session due in {self.days} day{'s' * (self.days != 1)}; {self.done + self.extra} done)"
        more = f"; {self.extra} more done, beyond what was due" if self.extra else ""
        return f"{100 * self.ratio:.0f}% ({self.done} of {self.due} due{more})"


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
                     today: dt.date, tz: dt.tzinfo | None = None,
                     from_day: dt.date | None = None) -> list[WeekAdherence]:
    """Done vs prescribed per ISO week, oldest first (see the module's rules). `from_day`:
    count nothing before it (a log exported since that day holds no earlier session)."""
    start = max(rx.starts_on, from_day) if from_day is not None else rx.starts_on
    last = min(today, rx.expires)
    if last < start:
        return []
    per_day = Counter(_local(t, tz).date() for t, status in session_starts if status == "completed")
    weeks = []
    monday = _monday(start)
    while monday <= last:
        first_day = max(monday, start)
        last_day = min(monday + dt.timedelta(days=6), last)
        days = (last_day - first_day).days + 1
        prescribed = round(min(rx.sessions_per_week * days / 7, rx.max_sessions_per_day * days), 2)
        done = sum(n for d, n in per_day.items() if first_day <= d <= last_day)
        # a second session on a day that allows one is not adherence, nor a seventh in a 5-a-week week
        allowed = sum(min(n, rx.max_sessions_per_day) for d, n in per_day.items() if first_day <= d <= last_day)
        counted = min(allowed, math.ceil(prescribed - 1e-9))
        weeks.append(WeekAdherence(
            week=_iso_week(monday), first_day=first_day, last_day=last_day, days=days,
            prescribed=prescribed, done=done, counted=counted,
            ratio=round(min(1.0, counted / prescribed), 2) if prescribed > 0 else None))
        monday += dt.timedelta(days=7)
    return weeks


def period_adherence(weeks: Sequence[WeekAdherence]) -> PeriodAdherence:
    """Sessions done of sessions due over the days `weeks` cover (rows of
    `weekly_adherence`, of one or more prescriptions in turn)."""
    if not weeks:
        return PeriodAdherence(None, None, 0, 0, 0, 0, None)
    due = math.floor(sum(w.prescribed for w in weeks) + 0.5)
    credited = sum(w.counted for w in weeks)
    done_total = sum(w.done for w in weeks)
    done = min(credited, due)
    return PeriodAdherence(
        first_day=min(w.first_day for w in weeks), last_day=max(w.last_day for w in weeks),
        days=sum(w.days for w in weeks), due=due, done=done, extra=done_total - done,
        ratio=(done / due) if due > 0 else None)


def _fmt(when: dt.datetime) -> str:
    return when.strftime("%A %Y-%m-%d %H:%M")


def _ceil_minute(when: dt.datetime) -> dt.datetime:
    """Round up, so "may start at 15:30" is never a minute early."""
    floor = when.replace(second=0, microsecond=0)
    return floor if floor == when else floor + dt.timedelta(minutes=1)


def _midnight(day: dt.date, tz: dt.tzinfo | None, like: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz or like.tzinfo)


def _blocks(rx: Prescription, session_starts: Sequence[SessionStart], now: dt.datetime,
            tz: dt.tzinfo | None) -> list[ScheduleBlock]:
    """Each rule broken, with the earliest time it allows a session (None = never)."""
    local_now = _local(now, tz)
    today = local_now.date()
    starts = sorted(_local(t, tz) for t, _ in session_starts)
    out: list[ScheduleBlock] = []
    if today < rx.starts_on:
        out.append(ScheduleBlock(
            "not_yet_valid",
            f"the prescription is valid from {rx.starts_on.isoformat()}; the first "
            f"session may start on {rx.starts_on.strftime('%A %Y-%m-%d')}",
            _midnight(rx.starts_on, tz, local_now)))
    if today > rx.expires:
        out.append(ScheduleBlock(
            "expired",
            f"the prescription expired on {rx.expires.isoformat()}; no session may "
            "start until your clinician issues a new one", None))
    n_today = sum(1 for s in starts if s.date() == today)
    if n_today >= rx.max_sessions_per_day:
        tomorrow = today + dt.timedelta(days=1)
        out.append(ScheduleBlock(
            "day",
            f"{n_today} session{'s' if n_today != 1 else ''} already today; the "
            f"prescription allows {rx.max_sessions_per_day} a day; the next may start "
            f"tomorrow, {tomorrow.strftime('%A %Y-%m-%d')}",
            _midnight(tomorrow, tz, local_now), n_today, rx.max_sessions_per_day))
    if starts and rx.min_hours_between > 0:
        earliest = _ceil_minute(starts[-1] + dt.timedelta(hours=rx.min_hours_between))
        if earliest > local_now:
            out.append(ScheduleBlock(
                "min_hours",
                f"the last session started at {_fmt(starts[-1])}; the prescription "
                f"asks for {rx.min_hours_between:g} hours between sessions; the next "
                f"may start at {_fmt(earliest)}", earliest))
    monday = _monday(today)
    n_week = sum(1 for s in starts if monday <= s.date() <= today)
    if n_week >= rx.sessions_per_week:
        next_monday = monday + dt.timedelta(days=7)
        out.append(ScheduleBlock(
            "week",
            f"{n_week} session{'s' if n_week != 1 else ''} already this week (from "
            f"Monday {monday.isoformat()}); the prescription allows "
            f"{rx.sessions_per_week} a week; the next may start on Monday "
            f"{next_monday.isoformat()}",
            _midnight(next_monday, tz, local_now), n_week, rx.sessions_per_week))
    return out


def schedule_allows(rx: Prescription, session_starts: Sequence[SessionStart], *,
                    now: dt.datetime, tz: dt.tzinfo | None = None) -> list[str]:
    """Why a session of `rx` may not start at `now` (empty: it may). `session_starts`
    are this prescription's sessions (`Store.session_starts(rx.id)`)."""
    return [block.reason for block in _blocks(rx, session_starts, now, tz)]


@dataclass(frozen=True)
class ScheduleBlock:
    """One schedule rule that keeps a session from starting now: `rule` is "not_yet_valid",
    "expired", "day", "min_hours" or "week"; `reason` the English sentence
    `schedule_allows` gives; `at` the earliest time the rule allows one (None: never);
    `count` and `allowed` the sessions already counted against the rule and how many it
    allows (day and week rules)."""

    rule: str
    reason: str
    at: dt.datetime | None
    count: int = 0
    allowed: int = 0


def schedule_blocks(rx: Prescription, session_starts: Sequence[SessionStart], *,
                    now: dt.datetime, tz: dt.tzinfo | None = None) -> list[ScheduleBlock]:
    """`schedule_allows`'s reasons with the rule each comes from, for a screen that says
    them in the patient's language."""
    return _blocks(rx, session_starts, now, tz)


def next_session_at(rx: Prescription, session_starts: Sequence[SessionStart], *,
                    now: dt.datetime, tz: dt.tzinfo | None = None) -> dt.datetime | None:
    """The earliest time every rule allows a session: `now` if one may start now, None
    if none ever may under this prescription. Each rule, once met, stays met while no
    session starts, so the earliest time is the latest of the rules' times."""
    blocks = _blocks(rx, session_starts, now, tz)
    if not blocks:
        return _local(now, tz)
    times = [block.at for block in blocks]
    if any(t is None for t in times):
        return None
    earliest = max(t for t in times if t is not None)
    return None if earliest.date() > rx.expires else earliest


#: A session that ends `aborted` within this many seconds of its start does not count
#: against the schedule: the patient may start again the same day.
EARLY_ABORT_S = 180


def session_ran_s(session: dict) -> float | None:
    """Seconds from a logged session's start to its end (None while it has not ended);
    `session` in the log export's shape (`started_at`, `ended_at`)."""
    if not session.get("ended_at"):
        return None
    return (dt.datetime.fromisoformat(session["ended_at"])
            - dt.datetime.fromisoformat(session["started_at"])).total_seconds()


def ended_early_by_safety_stop(session: dict) -> bool:
    """Ended `aborted` (e-stop, fault, electrode lost) within EARLY_ABORT_S of its start."""
    ran_s = session_ran_s(session)
    return session["status"] == "aborted" and ran_s is not None and ran_s <= EARLY_ABORT_S


def counted_starts(sessions: Sequence[dict]) -> list[SessionStart]:
    """(started_at, status) of the logged `sessions` (export shape: `started_at`,
    `ended_at`, `status`) that count against the schedule: all but those
    `ended_early_by_safety_stop`."""
    return [(dt.datetime.fromisoformat(s["started_at"]), s["status"])
            for s in sessions if not ended_early_by_safety_stop(s)]
