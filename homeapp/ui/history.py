"""History: the sessions on a calendar (a touch on a day shows that day's sessions),
intensity per channel over time, and the sessions done each week against the week's goal
in whole sessions."""
from __future__ import annotations

import datetime as dt
import math

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.modalview import ModalView
from kivy.uix.scrollview import ScrollView

from .after import summary_lines
from .base import BaseScreen
from .chart import LineChart, MonthCalendar, WeekBars
from .i18n import N_, _, f_
from .widgets import BigButton, Card, Text, Theme

MONTHS = (N_("January"), N_("February"), N_("March"), N_("April"), N_("May"), N_("June"),
          N_("July"), N_("August"), N_("September"), N_("October"), N_("November"), N_("December"))
WEEKDAYS = (N_("Mo"), N_("Tu"), N_("We"), N_("Th"), N_("Fr"), N_("Sa"), N_("Su"))
WEEKDAY_NAMES = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"),
                 N_("Saturday"), N_("Sunday"))

#: The header is slimmer here (its buttons still 60 px) and the month is chosen in it, so
#: the calendar's day cells get 60 px or more at 800 x 480.
HEADER_H = 60
CALENDAR_W = 7 * 64


def session_date(s) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(s["started_at"]).date()
    except (KeyError, TypeError, ValueError):
        return None


def week_goal(rx, first_day: dt.date) -> tuple[int, bool]:
    """(sessions to do in the week that `first_day` opens, whether the program covers only
    part of it). A whole week's goal is the prescription's sessions per week; a week the
    program starts or ends in owes its share of them, by the days it covers, rounded UP to
    whole sessions (a patient cannot do 0.7 of a session; schedules.adherence credits up to
    the same whole number), never more than the days allow. The week in progress counts to
    its Sunday: the goal is what the whole week asks, not only the days gone by."""
    monday = first_day - dt.timedelta(days=first_day.weekday())
    start = max(first_day, rx.starts_on)
    end = min(monday + dt.timedelta(days=6), rx.expires)
    days = max(0, (end - start).days + 1)
    share = rx.sessions_per_week * days / 7
    goal = min(math.ceil(share - 1e-9), rx.max_sessions_per_day * days)
    return goal, days < 7


def day_title(day: dt.date) -> str:
    """`Saturday 21 November 2026` (`lördag 21 november 2026`)."""
    return f_("{weekday} {day} {month} {year}", weekday=_(WEEKDAY_NAMES[day.weekday()]), day=day.day,
              month=_(MONTHS[day.month - 1]), year=day.year)


class HistoryScreen(BaseScreen):
    title_msg = N_("History")
    back_to = "home"

    def build(self):
        self.header.height = HEADER_H
        nav = BoxLayout(size_hint_x=None, width=64 + 230 + 64 + 12, spacing=6)
        self.prev = BigButton("<", bg=Theme.card_hi, size=Theme.font_large, size_hint_x=None, width=64)
        self.prev.bind(on_release=lambda *_: self.shift(-1))
        self.month_label = Text("", size=Theme.font_body, bold=True, halign="center")
        self.next = BigButton(">", bg=Theme.card_hi, size=Theme.font_large, size_hint_x=None, width=64)
        self.next.bind(on_release=lambda *_: self.shift(1))
        for w in (self.prev, self.month_label, self.next):
            nav.add_widget(w)
        self.header.add_widget(nav, index=1)          # between the title and Back

        row = BoxLayout(spacing=10)
        self.calendar = MonthCalendar([], on_day=self.show_day, size_hint_x=None, width=CALENDAR_W)
        row.add_widget(self.calendar)

        right = BoxLayout(orientation="vertical", spacing=6)
        c1 = Card(orientation="vertical", spacing=2, padding=(8, 4))
        self.chart_title = Text("", size=Theme.font_small - 2, bold=True, size_hint_y=None, fit=True)
        self.chart = LineChart()
        self.chart_legend = Text("", size=16, size_hint_y=None, fit=True, markup=True)
        for w in (self.chart_title, self.chart, self.chart_legend):
            c1.add_widget(w)
        c2 = Card(orientation="vertical", spacing=2, padding=(8, 4), size_hint_y=0.8)
        self.bars_title = Text("", size=Theme.font_small - 2, bold=True, size_hint_y=None, fit=True)
        self.bars = WeekBars()
        self.bars_note = Text("", size=16, color=Theme.muted, size_hint_y=None, fit=True)
        c2.add_widget(self.bars_title)
        c2.add_widget(self.bars)
        c2.add_widget(self.bars_note)
        self.bars_card = c2
        self.legend_cal = Text("", size=16, color=Theme.muted, size_hint_y=None, fit=True)
        right.add_widget(c1)
        right.add_widget(c2)
        right.add_widget(self.legend_cal)
        row.add_widget(right)
        self.body.add_widget(row)
        self.month = None
        self.day_view = None
        self.weeks: list[tuple[dt.date, int, int]] = []    # (first day, done, goal) as shown

    def shift(self, k: int):
        y, m = self.month
        m += k
        if m < 1:
            y, m = y - 1, 12
        elif m > 12:
            y, m = y + 1, 1
        self.month = (y, m)
        self.refresh()

    def on_pre_enter(self, *a):
        t = self.app.svc.today()
        self.month = (t.year, t.month)
        super().on_pre_enter(*a)

    def on_leave(self, *a):
        self.close_day()

    # ------------------------------------------------------------------ a day
    def day_lines(self, day: dt.date) -> list[str]:
        """What the day's sessions were, in the words of the After screen: when, how long
        and how it ended; per channel by its name, contractions and the highest mA."""
        svc = self.app.svc
        rx = svc.rx
        out = []
        for s in svc.sessions():
            if session_date(s) != day:
                continue
            try:
                start = dt.datetime.fromisoformat(s["started_at"])
                end = dt.datetime.fromisoformat(s["ended_at"]) if s.get("ended_at") else start
            except (KeyError, TypeError, ValueError):
                continue
            chans = s.get("channels", [])
            labels = ([c.label for c in rx.channels] if rx is not None and s.get("prescription_id") == rx.id
                      and len(rx.channels) == len(chans) else
                      [f_("Channel {n}", n=i + 1) for i in range(len(chans))])
            lines = summary_lines(s.get("status", ""), (end - start).total_seconds(), 0,
                                  [(lab, c.get("contractions", 0), c.get("peak_ma", 0) or 0)
                                   for lab, c in zip(labels, chans)],
                                  s.get("planned_contractions"))
            out.append(f"{start.astimezone().strftime('%H:%M')}  " + "\n".join(lines))
        return out

    def show_day(self, day: dt.date) -> None:
        """That day's sessions, in large type over the screen, with a big Close."""
        self.close_day()
        # Closed by its big Close only: a stray touch beside it does not take it away.
        view = ModalView(size_hint=(None, None), size=(760, 440), auto_dismiss=False,
                         background_color=(0, 0, 0, 0.85))
        box = Card(orientation="vertical", bg=Theme.card, spacing=10, padding=14)
        title = Text(day_title(day), size=Theme.font_large - 4, bold=True, size_hint_y=None, fit=True)
        lines = self.day_lines(day)
        body = Text("\n\n".join(lines) if lines else _("No session on this day."),
                    size=Theme.font_large - 4, valign="top", size_hint_y=None, fit=True)
        scroll = ScrollView(do_scroll_x=False, bar_width=10)
        scroll.add_widget(body)
        close = BigButton(_("Close"), bg=Theme.primary, size_hint_y=None, height=72)
        close.bind(on_release=lambda *_: self.close_day())
        for w in (title, scroll, close):
            box.add_widget(w)
        view.add_widget(box)
        view.day, view.title, view.text, view.close = day, title, body, close
        self.day_view = view
        view.open()

    def close_day(self):
        view, self.day_view = self.day_view, None
        if view is not None:
            view.dismiss()

    # ------------------------------------------------------------------ refresh
    def refresh(self):
        super().refresh()
        svc = self.app.svc
        if self.month is None:
            t = svc.today()
            self.month = (t.year, t.month)
        y, m = self.month
        self.month_label.text = f"{_(MONTHS[m - 1])} {y}"
        sessions = svc.sessions()
        days: dict[int, str] = {}
        for s in sessions:
            d = session_date(s)
            if d and d.year == y and d.month == m:
                # a completed session wins over one cut short on the same day
                if days.get(d.day) != "completed":
                    days[d.day] = s.get("status", "")
        self.calendar.weekday_names = [_(w) for w in WEEKDAYS]
        self.calendar.show(y, m, days, svc.today())
        self.legend_cal.text = _("Green: completed. Amber: ended early. Touch a day to see it.")
        self.chart_title.text = _("Highest intensity per session (mA)")
        n_ch = max([len(s.get("channels", [])) for s in sessions] + [len(svc.rx.channels) if svc.rx else 1])
        series = []
        for ch in range(n_ch):
            series.append([(s["channels"][ch].get("peak_ma") if ch < len(s.get("channels", [])) else None)
                           for s in sessions[-20:]])
        self.chart.set_data(series)
        if svc.rx is not None:
            labels = [c.label for c in svc.rx.channels]
        else:
            labels = [f_("Channel {n}", n=i + 1) for i in range(n_ch)]
        cols = ("FFB300", "6EC1FF")
        self.chart_legend.text = "   ".join(f"[color={cols[i % 2]}]\u2014 {lab}[/color]" for i, lab in enumerate(labels))
        if not sessions:
            self.chart_legend.text = _("No sessions yet.")
        self.bars_title.text = _("Sessions per week (line: your goal)")
        weeks, part = [], False
        for first_day, done, _prescribed in svc.weekly_history(6):
            goal, partial = week_goal(svc.rx, first_day)
            weeks.append((first_day, done, goal))
            part = part or partial
        self.weeks = weeks
        self.bars.set_data(weeks)
        self.bars_note.text = _("A week your program starts or ends in: its share of the "
                                "sessions, rounded up.") if part else ""
