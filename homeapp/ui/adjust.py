"""Adjust: the values the clinic lets the patient move (a block field with a min and max).

A calm, full-screen view over the Session screen: one row per adjustable field of the
current and later blocks, with a big - and +, the value and the allowed span. Each press
is one `set_param` through the app's command queue (never on the UI thread); the row
shows the value the engine accepted, or the engine's reason when it refused. STOP stays
on screen; alerts still cover this view (it lives inside the Session screen)."""
from __future__ import annotations

import math

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.scrollview import ScrollView

from .i18n import N_, _, f_, number
from .widgets import BigButton, Card, Text, Theme, paint_background

#: Field -> (plain name, unit, step of one press).
FIELDS = {
    "hz": (N_("Frequency"), N_("Hz"), 1.0),
    "pulse_us": (N_("Pulse width"), N_("\u00b5s"), 10.0),
    "on_s": (N_("Contraction"), N_("s"), 0.5),
    "off_s": (N_("Rest"), N_("s"), 0.5),
    "ramp_up_s": (N_("Ramp up"), N_("s"), 0.5),
    "ramp_down_s": (N_("Ramp down"), N_("s"), 0.5),
    "minutes": (N_("Block length"), N_("min"), 0.5),
}
ORDER = tuple(FIELDS)


def fmt(x: float) -> str:
    return number(x, 0 if float(x).is_integer() else 1)


def adjustable_blocks(blocks, state) -> list[int]:
    """Indexes of the blocks not yet over that have adjustable fields."""
    first = 0
    if state is not None and state.phase.value in ("running", "paused"):
        first = max(state.block_index, 0)
    if state is not None and state.phase.ended:
        return []
    return [i for i, b in enumerate(blocks) if i >= first and b.ranges]


class AdjustRow(Card):
    """One adjustable field: name, block, allowed span, -, value, +."""

    def __init__(self, view, block_index: int, block, param: str, **kw):
        super().__init__(orientation="horizontal", size_hint_y=None, height=self.ROW_H, padding=(14, 8),
                         spacing=10, **kw)
        self.view = view
        self.block_index = block_index
        self.block_label = block.label
        self.param = param
        self.range = block.ranges[param]
        self.value = float(getattr(block, param))   # what the engine accepted last
        self.pending: float | None = None            # asked, not answered yet
        self.message = ""
        self.locked = False                          # running continuous block: fixed now
        self.now: bool | None = None                 # the block running now (None: not known)
        left = BoxLayout(orientation="vertical", spacing=0)
        # A long name or block label wraps and the row grows (the list scrolls), never cut.
        self.name = Text("", size=Theme.font_body + 2, bold=True, size_hint_y=None, height=32, fit=True)
        self.where = Text("", size=Theme.font_small, color=Theme.muted, size_hint_y=None, height=26,
                          fit=True)
        self.allowed = Text("", size=Theme.font_small, size_hint_y=None, height=26)
        self.note = Text("", size=Theme.font_small - 2, color=Theme.warn, bold=True, valign="top")
        for w in (self.name, self.where, self.allowed, self.note):
            left.add_widget(w)
        for w in (self.name, self.where):
            w.bind(height=self._grow_row)
        self.minus = BigButton("\u2212", bg=Theme.primary, size=56, size_hint_x=None, width=96)
        self.minus.bind(on_release=lambda *_: self.press(-1))
        mid = BoxLayout(orientation="vertical", size_hint_x=None, width=130)
        self.shown = Text("", size=48, bold=True, halign="center")
        self.unit = Text("", size=Theme.font_small, bold=True, halign="center", size_hint_y=None, height=26)
        mid.add_widget(self.shown)
        mid.add_widget(self.unit)
        self.plus = BigButton("+", bg=Theme.primary, size=56, size_hint_x=None, width=96)
        self.plus.bind(on_release=lambda *_: self.press(+1))
        for w in (left, self.minus, mid, self.plus):
            self.add_widget(w)
        self.refresh()

    ROW_H = 124

    def _grow_row(self, *_):
        self.height = max(self.ROW_H, self.ROW_H + self.name.height - 32 + self.where.height - 26)

    @property
    def step(self) -> float:
        return FIELDS[self.param][2]

    def target(self, direction: int) -> float:
        base = self.pending if self.pending is not None else self.value
        new = base + direction * self.step
        return round(min(self.range.max, max(self.range.min, new)), 3)

    def press(self, direction: int) -> None:
        if self.locked:
            return
        base = self.pending if self.pending is not None else self.value
        new = self.target(direction)
        if new == base:
            self.refresh()
            return
        self.pending = new
        self.message = ""
        self.view.send(self, new)
        self.refresh()

    def answered(self, sent: float, error) -> None:
        """The engine's answer to one press (on the UI thread)."""
        if error is None:
            self.value = sent
            self.message = ""
        else:
            self.message = f_("Not changed: {reason}", reason=str(error))
        if self.pending == sent or error is not None:
            self.pending = None
        self.refresh()

    def set_locked(self, locked: bool) -> None:
        if locked != self.locked:
            self.locked = locked
            self.refresh()

    def set_now(self, now: bool | None) -> None:
        if now != self.now:
            self.now = now
            self.refresh()

    def refresh(self) -> None:
        name, unit, _step = FIELDS[self.param]
        self.name.text = _(name)
        if self.now is None:
            self.where.text = f_("Block {i}: {label}", i=self.block_index + 1, label=self.block_label)
        elif self.now:
            self.where.text = f_("Now, block {i}: {label}", i=self.block_index + 1, label=self.block_label)
        else:
            self.where.text = f_("Later, block {i}: {label}", i=self.block_index + 1, label=self.block_label)
        self.where.color = Theme.text if self.now else Theme.muted
        self.allowed.text = f_("allowed from {lo} to {hi} {unit}", lo=fmt(self.range.min),
                               hi=fmt(self.range.max), unit=_(unit))
        self.shown.text = fmt(self.value)
        self.unit.text = _(unit)
        if self.locked:
            self.note.text = _("This block runs without rest: it can change only before it begins.")
        else:
            self.note.text = self.message
        at = self.pending if self.pending is not None else self.value
        self.plus.disabled = self.locked or at >= self.range.max - 1e-9
        self.minus.disabled = self.locked or at <= self.range.min + 1e-9


class AdjustView(BoxLayout):
    """The full-screen Adjust view. `blocks`: the prescription's blocks of this session's
    engine (their values as the session began); later values come from the engine's answers."""

    def __init__(self, screen, blocks, **kw):
        super().__init__(orientation="vertical", padding=(10, 6, 10, 10), spacing=8, **kw)
        self.screen = screen
        self.app = screen.app
        self.blocks = list(blocks)
        paint_background(self)
        header = BoxLayout(size_hint_y=None, height=72, spacing=10)
        self.title = Text("", size=Theme.font_large, bold=True)
        self.done = BigButton("", bg=Theme.go, size=Theme.font_large - 2, size_hint_x=None, width=150)
        self.done.bind(on_release=lambda *_: self.screen.close_adjust())
        self.stop = BigButton("", bg=Theme.stop, size=Theme.font_large - 2, size_hint_x=None, width=150)
        self.stop.bind(on_press=lambda *_: self.app.stop_session())  # as the finger lands
        header.add_widget(self.title)
        header.add_widget(self.done)
        header.add_widget(self.stop)
        self.add_widget(header)
        # CONTRACT / REST and its countdown stay in sight while stimulation goes on.
        self.cue = Card(size_hint_y=None, height=56, padding=(14, 0))
        self.cue_phase = Text("", size=Theme.font_large, bold=True, color=Theme.warn_text)
        self.cue_count = Text("", size=Theme.font_large + 4, bold=True, color=Theme.warn_text,
                              halign="right", size_hint_x=None, width=90)
        self.cue.add_widget(self.cue_phase)
        self.cue.add_widget(self.cue_count)
        self.add_widget(self.cue)
        self.hint = Text("", size=Theme.font_small, color=Theme.muted, size_hint_y=None, height=28,
                         fit=True)
        self.add_widget(self.hint)
        self.scroll = ScrollView(do_scroll_x=False, bar_width=12, scroll_type=["bars", "content"])
        self.list = BoxLayout(orientation="vertical", size_hint_y=None, spacing=8)
        self.list.bind(minimum_height=self.list.setter("height"))
        self.scroll.add_widget(self.list)
        self.add_widget(self.scroll)
        self.rows: list[AdjustRow] = []
        self._shown_blocks: list[int] | None = None
        self._state = None
        self.refresh()

    def on_touch_down(self, touch):
        # Nothing under this view takes a touch while it is shown.
        super().on_touch_down(touch)
        return self.collide_point(*touch.pos)

    def on_touch_move(self, touch):
        super().on_touch_move(touch)
        return self.collide_point(*touch.pos)

    def on_touch_up(self, touch):
        super().on_touch_up(touch)
        return self.collide_point(*touch.pos)

    def send(self, row: AdjustRow, value: float) -> None:
        link = self.app.link
        if link is None:
            row.answered(value, RuntimeError(_("The session is not running.")))
            return
        link.set_param(row.block_index, row.param, value,
                       done=lambda _r, error, v=value: row.answered(v, error))

    def _build_rows(self, shown: list[int]) -> None:
        old = {(r.block_index, r.param): r for r in self.rows}
        self.list.clear_widgets()
        self.rows = []
        for i in shown:
            block = self.blocks[i]
            for param in ORDER:
                if param in block.ranges:
                    row = old.get((i, param)) or AdjustRow(self, i, block, param)
                    self.rows.append(row)
                    self.list.add_widget(row)
        self._shown_blocks = shown

    def render(self, state) -> None:
        self._state = state
        shown = adjustable_blocks(self.blocks, state)
        if shown != self._shown_blocks:
            self._build_rows(shown)
        active = state is not None and state.phase.value in ("running", "paused")
        for row in self.rows:
            row.set_locked(active and row.block_index == state.block_index
                           and self.blocks[row.block_index].continuous)
            row.set_now(row.block_index == state.block_index if active else None)
        self._show_cue(state)

    def _show_cue(self, state) -> None:
        running = state is not None and state.phase.value == "running"
        if running:
            self.cue_phase.text = _("CONTRACT") if state.contracting else _("REST")
            self.cue_count.text = str(max(0, int(math.ceil(state.phase_left_s))))
            self.cue.bg = Theme.contract if state.contracting else Theme.rest
            self.cue_phase.color = self.cue_count.color = Theme.warn_text
        else:
            paused = state is not None and state.phase.value == "paused"
            self.cue_phase.text = _("PAUSED") if paused else ""
            self.cue_count.text = ""
            self.cue.bg = Theme.card_hi
            self.cue_phase.color = Theme.text

    def refresh(self) -> None:
        self.title.text = _("Adjust your program")
        self.hint.text = _("Your clinic allows these changes. A change starts with the next contraction.")
        self.done.text = _("Done")
        self.stop.text = _("STOP")
        if self._shown_blocks is None:
            self._build_rows(adjustable_blocks(self.blocks, self._state))
        for row in self.rows:
            row.refresh()
