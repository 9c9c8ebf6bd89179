"""Small canvas charts for History: intensity per channel over time, adherence per week,
a month calendar. Drawn with Kivy instructions (fast, no image files)."""
from __future__ import annotations

import calendar
import datetime as dt

from kivy.core.text import Label as CoreLabel
from kivy.graphics import Color, Line, Rectangle
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
    """Lines of (x index, value) per series, with a y axis labelled in mA."""

    def __init__(self, **kw):
        self.series: list[list[float | None]] = []
        self.colors = list(Theme.channel)
        super().__init__(**kw)

    def set_data(self, series):
        self.series = series
        self.redraw()

    def redraw(self, *_):
        self.canvas.clear()
        left, bottom = 48, 8
        w, h = self.width - left - 8, self.height - bottom - 8
        x0, y0 = self.x + left, self.y + bottom
        values = [v for s in self.series for v in s if v is not None]
        top = max([10.0] + values)
        top = (int(top / 10) + 1) * 10
        n = max([len(s) for s in self.series] + [2])
        with self.canvas:
            Color(*Theme.card_hi)
            Rectangle(pos=(x0, y0), size=(w, h))
            Color(*Theme.muted)
            for k in range(0, int(top) + 1, max(10, int(top / 4 / 10) * 10)):
                y = y0 + h * k / top
                Line(points=[x0, y, x0 + w, y], width=1)
                draw_text(str(k), x0 - 6, y - 9, Theme.muted, align="right")
                Color(*Theme.muted)
            for si, s in enumerate(self.series):
                Color(*self.colors[si % len(self.colors)])
                pts = []
                for i, v in enumerate(s):
                    if v is None:
                        continue
                    x = x0 + w * (i / (n - 1) if n > 1 else 0.5)
                    pts += [x, y0 + h * v / top]
                if len(pts) >= 4:
                    Line(points=pts, width=2.5)
                for j in range(0, len(pts), 2):
                    Line(circle=(pts[j], pts[j + 1], 3.5), width=2)


class WeekBars(_CanvasChart):
    """Sessions done per week against the planned number (a line across each bar)."""

    def __init__(self, **kw):
        self.weeks: list[tuple[dt.date, int, int]] = []
        super().__init__(**kw)

    def set_data(self, weeks):
        self.weeks = weeks
        self.redraw()

    def redraw(self, *_):
        self.canvas.clear()
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
                draw_text(f"{done}/{_num(planned)}", self.x + i * bw + bw / 2, self.y + 2, Theme.text, align="center")


class MonthCalendar(GridLayout):
    """A month as a grid; days with a session are filled (green completed, amber cut short).

    The 7 weekday names and 42 day cells are made once and refilled on every `show`: a
    label made anew on each visit to History leaves native memory behind (textures,
    vertex buffers) that a device left on for months would pile up."""

    CELLS = 42   # six weeks, the most a month spans

    def __init__(self, weekday_names, **kw):
        kw.setdefault("spacing", 3)
        super().__init__(cols=7, **kw)
        self.weekday_names = weekday_names
        self._names = [Text("", size=16, halign="center", color=Theme.muted) for _i in range(7)]
        self._cells = []
        for _i in range(self.CELLS):
            cell = Text("", size=18, halign="center")
            with cell.canvas.before:
                cell.fill = Color(0, 0, 0, 0)
                r = Rectangle(pos=cell.pos, size=cell.size)
            cell.bind(pos=lambda w, v, r=r: setattr(r, "pos", v),
                      size=lambda w, v, r=r: setattr(r, "size", v))
            self._cells.append(cell)

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
            cell.bold = status is not None
            color = None
            if status == "completed":
                color = Theme.ok
            elif status is not None:
                color = Theme.warn
            cell.color = Theme.warn_text if color is not None else Theme.text
            if d and dt.date(year, month, d) == today:
                color = color or Theme.card_hi
            cell.fill.rgba = color if color is not None else (0, 0, 0, 0)
