"""The touchscreen's building blocks: a high-contrast theme, big buttons (never smaller
than 60 px in either direction), labels that wrap, cards, a PIN pad.

Sizes are in pixels of the official 7-inch screen (800 x 480, density 1).
"""
from __future__ import annotations

from kivy.graphics import Color, Line, Rectangle, RoundedRectangle
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget

#: Smallest touch target, both directions (issue 6: at least 60 px).
MIN_TOUCH = 60


def rgb(hexstr: str, a: float = 1.0) -> list[float]:
    h = hexstr.lstrip("#")
    return [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)] + [a]


class Theme:
    """Dark background, white text, colour only where it means something (contrast of
    white on the background is above 15:1; every button's text is above 7:1)."""

    bg = rgb("#0B1320")
    card = rgb("#18233A")
    card_hi = rgb("#22304F")
    text = rgb("#FFFFFF")
    muted = rgb("#C9D3E3")
    primary = rgb("#1F6FEB")       # ordinary actions (white text 4.6:1 at 28 px bold)
    go = rgb("#0E7A3A")            # Start, Continue (white text 5.6:1)
    stop = rgb("#C62828")          # STOP (white text 5.6:1)
    warn = rgb("#FFB300")          # warnings: dark text on amber
    warn_text = rgb("#111111")
    ok = rgb("#2EBD59")
    bad = rgb("#FF5A5A")
    disabled = rgb("#3A4457")
    contract = rgb("#FFB300")      # CONTRACT shows in amber, REST in calm blue
    rest = rgb("#6EC1FF")
    channel = (rgb("#FFB300"), rgb("#6EC1FF"))   # channel 1 / channel 2 everywhere

    font_small = 20
    font_body = 24
    font_large = 32


class Text(Label):
    """A label that wraps to its width and, with ``fit=True``, grows to its text."""

    fit = BooleanProperty(False)

    def __init__(self, text: str = "", size: int | None = None, color=None, bold=False,
                 halign="left", valign="middle", fit=False, **kw):
        super().__init__(text=text, font_size=size or Theme.font_body,
                         color=color or Theme.text, bold=bold, halign=halign,
                         valign=valign, **kw)
        self.fit = fit
        # Bound once: binding in _wrap added one more handler on every width change.
        self.bind(width=self._wrap, height=self._wrap, fit=self._wrap, texture_size=self._grow,
                  text=self._grow)
        self._wrap()
        self._grow()

    def _wrap(self, *_):
        self.text_size = (self.width, None if self.fit else self.height)

    def _grow(self, *_):
        if self.fit:
            # No text, no height (Kivy leaves an empty label's texture size alone).
            self.height = self.texture_size[1] if self.text else 0


class BigButton(Button):
    """A flat, high-contrast button: at least 60 x 60 px, bold text that wraps."""

    bg = ListProperty(Theme.primary)
    fg = ListProperty(Theme.text)
    radius = NumericProperty(12)

    def __init__(self, text: str = "", bg=None, fg=None, size: int | None = None, **kw):
        kw.setdefault("size_hint_min", (MIN_TOUCH, MIN_TOUCH))
        super().__init__(text=text, font_size=size or Theme.font_body, bold=True,
                         background_normal="", background_down="", background_disabled_normal="",
                         background_disabled_down="", background_color=(0, 0, 0, 0),
                         halign="center", valign="middle", **kw)
        if bg is not None:
            self.bg = bg
        if fg is not None:
            self.fg = fg
        with self.canvas.before:
            self._c = Color(*self.bg)
            self._r = RoundedRectangle(pos=self.pos, size=self.size, radius=[self.radius])
        self.bind(pos=self._redraw, size=self._redraw, bg=self._redraw, state=self._redraw,
                  disabled=self._redraw, fg=self._redraw)
        self._redraw()

    def _redraw(self, *_):
        self.text_size = (max(0, self.width - 16), None)
        self._r.pos, self._r.size = self.pos, self.size
        if self.disabled:
            self._c.rgba = Theme.disabled
            self.color = self.disabled_color = Theme.muted
        else:
            r, g, b, a = self.bg
            k = 1.25 if self.state == "down" else 1.0
            self._c.rgba = [min(1, r * k + (0.08 if k > 1 else 0)), min(1, g * k + (0.08 if k > 1 else 0)),
                            min(1, b * k + (0.08 if k > 1 else 0)), a]
            self.color = self.fg


class Card(BoxLayout):
    """A box with a filled, rounded background."""

    bg = ListProperty(Theme.card)

    def __init__(self, bg=None, **kw):
        kw.setdefault("padding", 12)
        kw.setdefault("spacing", 8)
        super().__init__(**kw)
        if bg is not None:
            self.bg = bg
        with self.canvas.before:
            self._c = Color(*self.bg)
            self._r = RoundedRectangle(pos=self.pos, size=self.size, radius=[12])
        self.bind(pos=self._redraw, size=self._redraw, bg=self._redraw)

    def _redraw(self, *_):
        self._c.rgba = self.bg
        self._r.pos, self._r.size = self.pos, self.size


def paint_background(widget: Widget, color=None) -> None:
    with widget.canvas.before:
        c = Color(*(color or Theme.bg))
        r = Rectangle(pos=widget.pos, size=widget.size)
    widget.bind(pos=lambda *_: setattr(r, "pos", widget.pos),
                size=lambda *_: setattr(r, "size", widget.size))
    widget._bg_color = c


class Dot(Widget):
    """A filled circle with an outline: contact indicators, calendar marks."""

    fill = ListProperty(Theme.ok)

    def __init__(self, fill=None, **kw):
        super().__init__(**kw)
        if fill is not None:
            self.fill = fill
        with self.canvas:
            self._c = Color(*self.fill)
            from kivy.graphics import Ellipse
            self._e = Ellipse()
            Color(*Theme.text)
            self._l = Line(width=1.5)
        self.bind(pos=self._redraw, size=self._redraw, fill=self._redraw)

    def _redraw(self, *_):
        d = min(self.width, self.height)
        x = self.center_x - d / 2
        y = self.center_y - d / 2
        self._c.rgba = self.fill
        self._e.pos, self._e.size = (x, y), (d, d)
        self._l.circle = (self.center_x, self.center_y, d / 2)


class ProblemText(Text):
    """A line that, when something is wrong ("Wrong PIN. Try again."), says it large, bold
    and white on red, readable at arm's length (5.6:1, at 28 px bold); otherwise plain."""

    problem = BooleanProperty(False)

    def __init__(self, text: str = "", size: int | None = None, color=None, **kw):
        self.plain_size = size or Theme.font_body
        self.plain_color = color or Theme.text
        super().__init__(text, size=self.plain_size, color=self.plain_color, **kw)
        with self.canvas.before:
            self._box_color = Color(0, 0, 0, 0)
            self._box = RoundedRectangle(pos=self.pos, size=self.size, radius=[10])
        self.bind(pos=self._redraw_box, size=self._redraw_box, texture_size=self._redraw_box,
                  problem=self._redraw_box)

    def show_problem(self, text: str) -> None:
        """Say what is wrong, in the large red box."""
        self.problem = True
        self.text = text

    def show(self, text: str, color=None) -> None:
        """A plain line (a hint), or nothing."""
        self.problem = False
        self.text = text
        if color is not None:
            self.plain_color = color
        self._redraw_box()

    def _redraw_box(self, *_):
        on = self.problem and bool(self.text)
        self.font_size = PROBLEM_FONT if on else self.plain_size
        self.bold = on
        self.color = Theme.text if on else self.plain_color
        self.padding = (12, 8) if on else (0, 0)
        self._box_color.rgba = Theme.stop if on else (0, 0, 0, 0)
        # The box hugs the text's lines (centred in the label's height), not the whole label.
        h = min(self.height, self.texture_size[1]) if on else 0
        self._box.pos = (self.x, self.center_y - h / 2)
        self._box.size = (self.width, h)


#: The size a problem is said in (Theme.font_large - 4).
PROBLEM_FONT = 28


class PinDots:
    """One big filled dot per digit typed (a PIN is not shown), 28 px each, readable at
    arm's length, drawn centred over a label (the pad's display line)."""

    DOT_PX = 28
    GAP_PX = 14

    def __init__(self, over: Widget):
        self.over = over
        self.count = 0
        self.dot_rects: list[tuple[float, float, float, float]] = []   # x, y, w, h of each dot
        over.bind(pos=self._redraw, size=self._redraw)

    def show(self, count: int) -> None:
        self.count = count
        self._redraw()

    def _redraw(self, *_):
        from kivy.graphics import Ellipse
        w = self.over
        w.canvas.after.clear()
        n = self.count
        d = min(self.DOT_PX, w.height)
        total = n * d + max(0, n - 1) * self.GAP_PX
        x, y = w.center_x - total / 2, w.center_y - d / 2
        self.dot_rects = [(x + i * (d + self.GAP_PX), y, d, d) for i in range(n)]
        with w.canvas.after:
            Color(*Theme.text)
            for r in self.dot_rects:
                Ellipse(pos=r[:2], size=r[2:])


class PinPad(BoxLayout):
    """Ten digits, Clear and OK, a masked display. Calls ``on_pin(pin)`` on OK.

    Typed digits show as big dots (`dots`); the `display` line above them carries text
    instead where a caller puts some there (a prompt, or the digits of a code that is not
    secret), and the dots hide while it does."""

    masked = StringProperty("")

    def __init__(self, on_pin, ok_text: str, clear_text: str, max_len: int = 8, **kw):
        super().__init__(orientation="vertical", spacing=8, **kw)
        self._pin = ""
        self._on_pin = on_pin
        self.max_len = max_len
        self.display = Text("", size=Theme.font_large, halign="center", size_hint_y=None, height=50)
        self.dots = PinDots(self.display)
        self.display.bind(text=self._show_dots)
        self.add_widget(self.display)
        grid = GridLayout(cols=3, spacing=8)
        self.buttons: dict[str, BigButton] = {}
        for key in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "ok"):
            if key == "clear":
                b = BigButton(clear_text, bg=Theme.card_hi, size=Theme.font_body)
            elif key == "ok":
                b = BigButton(ok_text, bg=Theme.go, size=Theme.font_body)
            else:
                b = BigButton(key, bg=Theme.card_hi, size=Theme.font_large)
            b.bind(on_release=lambda _b, k=key: self.press(k))
            self.buttons[key] = b
            grid.add_widget(b)
        self.add_widget(grid)

    def press(self, key: str) -> None:
        if key == "clear":
            self._pin = ""
        elif key == "ok":
            pin, self._pin = self._pin, ""
            self.display.text = ""
            self._show_dots()
            self._on_pin(pin)
            return
        elif len(self._pin) < self.max_len:
            self._pin += key
        self.display.text = ""
        self._show_dots()

    def _show_dots(self, *_):
        self.dots.show(0 if self.display.text else len(self._pin))

    def clear(self):
        self._pin = ""
        self.display.text = ""
        self._show_dots()
