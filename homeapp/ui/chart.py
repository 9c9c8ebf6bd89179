"""Small canvas charts for History: intensity per channel over time, adherence per week,
a month calendar. Drawn with Kivy instructions (fast, no image files)."""
from __future__ import annotations

import calendar
import datetime as dt

from kivy.core.text import Label as CoreLabel
from kivy.graphics import Color, Ellipse, Line, Rectangle
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from .widgets import Theme, Text


def _num(x: float) -> str:
    from .i18n import number
    return number(x, 0 if float(x).is_integer() else 1)


def text_texture(text: str, size: int = 16):
    lab = CoreLabel(text=text, font_size=size)
    lab.refresh()
    return lab.texture


def draw_text(text: str, x: float, y: float, color, size: int = 16, align: str = "left") -> None:
    """Inside a `with canvas:` block: text with its lower-left (or centre/right) at x, y."""
    tex = text_texture(text, size)
    w, h = tex.size
    if align == "center":
        x -= w / 2
    elif align == "right":
        x -= w
    Color(*color)
    Rectangle(texture=tex, pos=(x, y), size=(w, h))


class _CanvasChart(Widget):
    """A chart drawn straight on the canvas (texts too), redrawn when resized or fed."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.bind(pos=self.redraw, size=self.redraw)

    def redraw(self, *_):
        raise NotImplementedError


class LineChart(_CanvasChart):
    """Lines of (x index, value) per series, with a y axis labelled in mA.

    Every dot lies wholly inside the plot (the first and last sit a dot's width in from its
    edges). Where two channels have the same value their marks do not hide each other: the
    first channel is a filled dot on a thick line, the second a ring around it (its hole
    wider than the dot) on a thin line."""

    DOT_R = 4.5          # the first channel's filled dot, px
    RING_R = 7.0         # the second channel's ring (its stroke's centre line), px
    RING_W = 1.5
    LINE_W = (2.5, 1.2)  # the first channel's line is wider, so it shows beside the second's
    LEFT_PX = 48         # room for the axis labels

    def __init__(self, **kw):
        self.series: list[list[float | None]] = []
        self.colors = list(Theme.channel)
        self.dots: list[tuple[int, float, float]] = []     # (series, x, y) of every mark drawn
        self.plot_rect = (0.0, 0.0, 0.0, 0.0)                # x0, y0, x1, y1 of the plot area
        super().__init__(**kw)

    def set_data(self, series):
        self.series = series
        self.redraw()

    def mark_radius(self, si: int) -> float:
        """How far a mark of series `si` reaches from its centre."""
        return self.DOT_R if si % 2 == 0 else self.RING_R + self.RING_W   # Kivy strokes width each side

    def redraw(self, *_):
        self.canvas.clear()
        self.dots = []
        left, bottom = self.LEFT_PX, 8
        w, h = self.width - left - 8, self.height - bottom - 8
        x0, y0 = self.x + left, self.y + bottom
        self.plot_rect = (x0, y0, x0 + w, y0 + h)
        values = [v for s in self.series for v in s if v is not None]
        top = max([10.0] + values)
        top = (int(top / 10) + 1) * 10
        n = max([len(s) for s in self.series] + [2])
        inset = max([self.mark_radius(si) for si in range(len(self.series))] + [self.DOT_R]) + 1
        span, h_in = max(0.0, w - 2 * inset), max(0.0, h - 2 * inset)
        with self.canvas:
            Color(*Theme.card_hi)
            Rectangle(pos=(x0, y0), size=(w, h))
            Color(*Theme.muted)
            for k in range(0, int(top) + 1, max(10, int(top / 4 / 10) * 10)):
                y = y0 + inset + h_in * k / top
                Line(points=[x0, y, x0 + w, y], width=1)
                draw_text(str(k), x0 - 6, y - 9, Theme.muted, align="right")
                Color(*Theme.muted)
            for si, s in enumerate(self.series):
                Color(*self.colors[si % len(self.colors)])
                pts = []
                for i, v in enumerate(s):
                    if v is None:
                        continue
                    x = x0 + inset + span * (i / (n - 1) if n > 1 else 0.5)
                    pts += [x, y0 + inset + h_in * v / top]
                if len(pts) >= 4:
                    Line(points=pts, width=self.LINE_W[si % 2])
                for j in range(0, len(pts), 2):
                    x, y = pts[j], pts[j + 1]
                    if si % 2 == 0:
                        r = self.DOT_R
                        Ellipse(pos=(x - r, y - r), size=(2 * r, 2 * r))
                    else:
                        Line(circle=(x, y, self.RING_R), width=self.RING_W)
                    self.dots.append((si, x, y))


class WeekBars(_CanvasChart):
    """Sessions done per week against the planned number (a line across each bar)."""

    def __init__(self, **kw):
        self.weeks: list[tuple[dt.date, int, int]] = []
        self.labels: list[str] = []      # what each bar says, "done/goal"
        super().__init__(**kw)

    def set_data(self, weeks):
        self.weeks = weeks
        self.redraw()

    def redraw(self, *_):
        self.canvas.clear()
        self.labels = []
        if not self.weeks:
            return
        n = len(self.weeks)
        top = max([1] + [max(d, p) for _, d, p in self.weeks])
        bw = self.width / n
        base = self.y + 24
        h = self.height - 30
        with self.canvas:
            for i, (monday, done, planned) in enumerate(self.weeks):
                x = self.x + i * bw + bw * 0.15
                Color(*(Theme.ok if planned and done >= planned else Theme.rest))
                Rectangle(pos=(x, base), size=(bw * 0.7, h * done / top))
                if planned:
                    Color(*Theme.text)
                    yp = base + h * planned / top
                    Line(points=[x - 4, yp, x + bw * 0.7 + 4, yp], width=2, dash_length=6, dash_offset=4)
                self.labels.append(f"{done}/{_num(planned)}")
                draw_text(self.labels[-1], self.x + i * bw + bw / 2, self.y + 2, Theme.text, size=18,
                          align="center")


class DayCell(ButtonBehavior, Text):
    """A day of the calendar: its number on a fill that says what happened; a touch shows
    that day's sessions. The fill is inset so neighbours look apart while the whole cell
    (60 px or more) takes the touch."""

    INSET_PX = 2

    def __init__(self, **kw):
        super().__init__(text="", size=20, halign="center", **kw)
        self.day: dt.date | None = None
        with self.canvas.before:
            self.fill = Color(0, 0, 0, 0)
            self._r = Rectangle()
        self.bind(pos=self._place, size=self._place)

    def _place(self, *_):
        i = self.INSET_PX
        self._r.pos = (self.x + i, self.y + i)
        self._r.size = (max(0, self.width - 2 * i), max(0, self.height - 2 * i))


class MonthCalendar(GridLayout):
    """A month as a grid; days with a session are filled (green completed, amber cut short).
    A touch on a day calls `on_day(date)`.

    The 7 weekday names and 42 day cells are made once and refilled on every `show`: a
    label made anew on each visit to History leaves native memory behind (textures,
    vertex buffers) that a device left on for months would pile up."""

    CELLS = 42   # six weeks, the most a month spans
    NAMES_H = 22

    def __init__(self, weekday_names, on_day=None, **kw):
        kw.setdefault("spacing", 0)
        super().__init__(cols=7, **kw)
        self.weekday_names = weekday_names
        self.on_day = on_day
        self._names = [Text("", size=16, halign="center", color=Theme.muted, size_hint_y=None,
                            height=self.NAMES_H) for _i in range(7)]
        self._cells = []
        for _i in range(self.CELLS):
            cell = DayCell()
            cell.bind(on_release=self._touched)
            self._cells.append(cell)

    def _touched(self, cell):
        if cell.day is not None and self.on_day is not None:
            self.on_day(cell.day)

    def show(self, year: int, month: int, days: dict[int, str], today: dt.date):
        weeks = calendar.Calendar(firstweekday=0).monthdayscalendar(year, month)
        shown = self._names + self._cells[:7 * len(weeks)]
        if self.children[::-1] != shown:
            self.clear_widgets()
            for w in shown:
                self.add_widget(w)
        for label, name in zip(self._names, self.weekday_names):
            label.text = name
        for cell, d in zip(self._cells, [d for week in weeks for d in week]):
            status = days.get(d)
            cell.text = str(d) if d else ""
            cell.day = dt.date(year, month, d) if d else None
            cell.disabled = not d
            cell.bold = status is not None
            color = None
            if status == "completed":
                color = Theme.ok
            elif status is not None:
                color = Theme.warn
            cell.color = cell.disabled_color = Theme.warn_text if color is not None else Theme.text
            if d and dt.date(year, month, d) == today:
                color = color or Theme.card_hi
            cell.fill.rgba = color if color is not None else (0, 0, 0, 0)
