"""History: the sessions on a calendar, intensity per channel over time, adherence per
week against the prescription."""
from __future__ import annotations

import datetime as dt

from kivy.uix.boxlayout import BoxLayout

from .base import BaseScreen
from .chart import LineChart, MonthCalendar, WeekBars
from .i18n import N_, _, f_
from .widgets import BigButton, Card, Text, Theme

MONTHS = (N_("January"), N_("February"), N_("March"), N_("April"), N_("May"), N_("June"),
          N_("July"), N_("August"), N_("September"), N_("October"), N_("November"), N_("December"))
WEEKDAYS = (N_("Mo"), N_("Tu"), N_("We"), N_("Th"), N_("Fr"), N_("Sa"), N_("Su"))


def session_date(s) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(s["started_at"]).date()
    except (KeyError, TypeError, ValueError):
        return None


class HistoryScreen(BaseScreen):
    title_msg = N_("History")
    back_to = "home"

    def build(self):
        row = BoxLayout(spacing=10)
        left = Card(orientation="vertical", size_hint_x=None, width=340, spacing=4)
        nav = BoxLayout(size_hint_y=None, height=60, spacing=6)
        self.prev = BigButton("<", bg=Theme.card_hi, size=Theme.font_large, size_hint_x=None, width=64)
        self.prev.bind(on_release=lambda *_: self.shift(-1))
        self.month_label = Text("", size=Theme.font_body - 2, bold=True, halign="center")
        self.next = BigButton(">", bg=Theme.card_hi, size=Theme.font_large, size_hint_x=None, width=64)
        self.next.bind(on_release=lambda *_: self.shift(1))
        for w in (self.prev, self.month_label, self.next):
            nav.add_widget(w)
        left.add_widget(nav)
        self.calendar = MonthCalendar([], spacing=2)
        left.add_widget(self.calendar)
        self.legend_cal = Text("", size=16, color=Theme.muted, size_hint_y=None, height=24)
        left.add_widget(self.legend_cal)
        row.add_widget(left)

        right = BoxLayout(orientation="vertical", spacing=8)
        c1 = Card(orientation="vertical", spacing=2)
        self.chart_title = Text("", size=Theme.font_small, bold=True, size_hint_y=None, height=26)
        self.chart = LineChart()
        self.chart_legend = Text("", size=16, size_hint_y=None, height=22, markup=True)
        self.chart_empty = Text("", size=Theme.font_small, color=Theme.muted, size_hint_y=None, height=0)
        for w in (self.chart_title, self.chart, self.chart_legend):
            c1.add_widget(w)
        c2 = Card(orientation="vertical", spacing=2, size_hint_y=0.7)
        self.bars_title = Text("", size=Theme.font_small, bold=True, size_hint_y=None, height=26)
        self.bars = WeekBars()
        c2.add_widget(self.bars_title)
        c2.add_widget(self.bars)
        right.add_widget(c1)
        right.add_widget(c2)
        row.add_widget(right)
        self.body.add_widget(row)
        self.month = None

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
        self.legend_cal.text = _("Green: completed. Amber: ended early.")
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
        self.bars_title.text = _("Sessions per week (line: prescribed)")
        self.bars.set_data(svc.weekly_history(6))
