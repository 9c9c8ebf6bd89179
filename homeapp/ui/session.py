"""Session: CONTRACT / REST in large type with a countdown, the block and the time left,
per-channel intensity with big - and + that stop at the cap and say why, pause, and a
STOP that is always visible and always works. When the prescription lets the patient
move some block values, an Adjust button opens the Adjust view (adjust.py) over it."""
from __future__ import annotations

import math

from kivy.clock import Clock
from kivy.uix.boxlayout import BoxLayout

from schedules.limits import INTENSITY_RISE_MA_PER_S, INTENSITY_STEP_MA

from .base import BaseScreen
from .i18n import _, f_, ma_text
from .kind_texts import notice_text  # the one table of the engine's kinds
from .widgets import BigButton, Card, Text, Theme


def clock_text(seconds: float) -> str:
    s = max(0, int(math.ceil(seconds)))
    return f"{s // 60}:{s % 60:02d}"


class ChannelControl(Card):
    def __init__(self, screen, index: int, **kw):
        super().__init__(orientation="vertical", spacing=4, padding=(10, 6), **kw)
        self.screen = screen
        self.index = index
        top = BoxLayout(size_hint_y=None, height=30)
        # The clinic's name for the channel wraps rather than being cut; the row grows with it.
        self.name = Text("", size=Theme.font_small, bold=True, color=Theme.channel[index % 2],
                         size_hint_y=None, fit=True)
        self.name.bind(height=lambda _w, h: setattr(top, "height", max(30, h)))
        # "max 100 mA" on one line
        self.cap = Text("", size=Theme.font_small - 2, color=Theme.muted, halign="right", size_hint_x=None,
                        width=110)
        top.add_widget(self.name)
        top.add_widget(self.cap)
        self.add_widget(top)
        row = BoxLayout(spacing=8)
        self.minus = BigButton("\u2212", bg=Theme.primary, size=64, size_hint_x=None, width=88)
        self.minus.bind(on_release=lambda *_: screen.app.decrease(index))
        mid = BoxLayout(orientation="vertical")
        self.ma = Text("", size=52, bold=True, halign="center")
        self.unit = Text("mA", size=Theme.font_body, bold=True, halign="center", size_hint_y=None, height=28)
        mid.add_widget(self.ma)
        mid.add_widget(self.unit)
        self.plus = BigButton("+", bg=Theme.primary, size=64, size_hint_x=None, width=88)
        # + acts as the finger lands and, held, repeats at the rate the engine lets the
        # intensity rise (the engine still limits every step); each step shows.
        self.plus.bind(on_press=lambda *_: self.start_raise(), state=self._plus_state)
        self._raising = None
        self._asked_at = 0.0       # when a held + last asked (Kivy's clock)
        self._asked_ma = 0.0       # and for what
        self._at_cap = False
        row.add_widget(self.minus)
        row.add_widget(mid)
        row.add_widget(self.plus)
        self.add_widget(row)
        self.restore = BigButton("", bg=Theme.go, size=Theme.font_large - 2, size_hint_y=None, height=72)
        self.restore.bind(on_release=lambda *_: screen.app.restore(index))
        self.note = Text("", size=Theme.font_small, color=Theme.warn, bold=True, size_hint_y=None, height=80,
                         valign="top")
        self.add_widget(self.note)
        self._showing_restore = False

    #: Seconds between the steps of a held +: one step at the rate the engine lets it rise.
    HOLD_REPEAT_S = INTENSITY_STEP_MA / INTENSITY_RISE_MA_PER_S
    #: How often a held + looks whether the next step may be asked for.
    HOLD_TICK_S = 0.05
    #: The board has reached a step when it is this close (the DAC's steps are 0.024 mA).
    REACHED_MA = 0.1

    def _shown_channel(self):
        st = self.screen._last
        return st.channels[self.index] if st is not None and self.index < len(st.channels) else None

    def _ask_up(self) -> None:
        ch = self._shown_channel()
        self._asked_ma = (ch.target_ma if ch is not None else 0.0) + INTENSITY_STEP_MA
        self._asked_at = Clock.get_boottime()
        self.screen.app.increase(self.index)

    def start_raise(self) -> None:
        self.stop_raise()
        self._ask_up()
        self._raising = Clock.schedule_interval(self._raise_step, self.HOLD_TICK_S)

    def _step_reached(self) -> bool:
        """Whether the engine took the last step and the board gives it (the engine raises
        it at its allowed rate, in the session's own time): the next step waits for it, so a
        held + never runs ahead of the current and each step shows as it is delivered."""
        ch = self._shown_channel()
        return (ch is not None and ch.target_ma >= self._asked_ma - 1e-6
                and ch.set_ma >= ch.target_ma - self.REACHED_MA)

    def _raise_step(self, _dt) -> bool:
        if self.plus.state != "down" or self.plus.disabled or self.plus.get_root_window() is None:
            self.stop_raise()
            return False
        if self._at_cap:
            # One last ask at the cap: the engine refuses it and says why; then no more.
            self.screen.app.increase(self.index)
            self.stop_raise()
            return False
        if Clock.get_boottime() - self._asked_at < self.HOLD_REPEAT_S - 1e-3 or not self._step_reached():
            return True
        self._ask_up()
        return True

    def stop_raise(self) -> None:
        if self._raising is not None:
            self._raising.cancel()
            self._raising = None

    def _plus_state(self, _button, state) -> None:
        if state != "down":
            self.stop_raise()

    def render(self, ch, state, notice_here: str):
        self.name.text = ch.label
        self.ma.text = ma_text(ch.target_ma)
        self.cap.text = f_("max {cap} mA", cap=ma_text(ch.max_ma))
        at_cap = self._at_cap = ch.target_ma >= ch.max_ma - 1e-9
        self.plus.bg = Theme.disabled if at_cap else Theme.primary
        running = state.phase.value == "running"
        self.plus.disabled = not running
        self.minus.disabled = not running or ch.target_ma <= 0
        want_restore = running and ch.previous_ma > ch.target_ma + 0.5
        if want_restore and not at_cap:
            self.plus.bg = Theme.card_hi   # the green way back is the obvious next touch
        if want_restore != self._showing_restore:
            self._showing_restore = want_restore
            self.remove_widget(self.restore if not want_restore else self.note)
            self.add_widget(self.restore if want_restore else self.note)
        self.restore.text = f_("Back to {ma} mA", ma=ma_text(ch.previous_ma))
        if not notice_here and state.phase.value == "paused" and ch.previous_ma > 0:
            notice_here = f_("Before the pause: {ma} mA. After Continue, one touch brings it back.",
                             ma=ma_text(ch.previous_ma))
        self.note.text = notice_here


class SessionScreen(BaseScreen):
    title_msg = ""

    def build(self):
        self.root_box.remove_widget(self.header)
        self.root_box.padding = (10, 10, 10, 10)
        outer = BoxLayout(spacing=10)
        main = BoxLayout(orientation="vertical", spacing=8)
        info = BoxLayout(size_hint_y=None, height=40)
        self.block = Text("", size=Theme.font_body, bold=True)
        self.left = Text("", size=Theme.font_body, bold=True, halign="right", size_hint_x=0.45)
        info.add_widget(self.block)
        info.add_widget(self.left)
        main.add_widget(info)
        phase = Card(size_hint_y=None, height=120, padding=(16, 0))
        self.phase_card = phase
        self.phase = Text("", size=76, bold=True)
        self.count = Text("", size=100, bold=True, halign="right", size_hint_x=0.28)
        phase.add_widget(self.phase)
        phase.add_widget(self.count)
        main.add_widget(phase)
        self.channels_box = BoxLayout(spacing=8)
        main.add_widget(self.channels_box)
        outer.add_widget(main)
        side = BoxLayout(orientation="vertical", size_hint_x=None, width=150, spacing=10)
        self.stop_button = BigButton("", bg=Theme.stop, size=Theme.font_large + 4)
        # STOP acts as the finger lands: not on lifting, and not only if it lifts on the button.
        self.stop_button.bind(on_press=lambda *_: self.app.stop_session())
        self.pause_button = BigButton("", bg=Theme.card_hi, size=Theme.font_large - 4, size_hint_y=0.6)
        self.pause_button.bind(on_release=lambda *_: self.toggle_pause())
        self.adjust_button = BigButton("", bg=Theme.card_hi, size=Theme.font_body, size_hint_y=0.5)
        self.adjust_button.bind(on_release=lambda *_: self.open_adjust())
        side.add_widget(self.stop_button)
        side.add_widget(self.pause_button)
        self.side = side
        outer.add_widget(side)
        self.body.add_widget(outer)
        self.controls: list[ChannelControl] = []
        self._last = None
        self._elapsed_seen = (None, 0.0)  # (session id, the most stimulation time shown)
        self.adjust_view = None          # the Adjust view of this session's engine
        self._adjust_engine = None

    # ------------------------------------------------------------------ Adjust
    def _blocks(self):
        rx = getattr(self.app.engine, "rx", None)     # immutable: read without the engine's lock
        return tuple(getattr(rx, "blocks", ()) or ())

    def can_adjust(self, state) -> bool:
        if state is None or state.phase.value not in ("running", "paused"):
            return False
        from .adjust import adjustable_blocks
        return bool(adjustable_blocks(self._blocks(), state))

    def open_adjust(self):
        from .adjust import AdjustView
        if not self.can_adjust(self._last):
            return
        if self.adjust_view is None or self._adjust_engine is not self.app.engine:
            self.close_adjust()
            self.adjust_view = AdjustView(self, self._blocks())
            self._adjust_engine = self.app.engine
        if self.adjust_view.parent is None:
            self.add_widget(self.adjust_view)
        self.adjust_view.refresh()
        self.adjust_view.render(self._last)

    def close_adjust(self):
        if self.adjust_view is not None and self.adjust_view.parent is not None:
            self.remove_widget(self.adjust_view)

    @property
    def adjusting(self) -> bool:
        return self.adjust_view is not None and self.adjust_view.parent is not None

    def on_leave(self, *args):
        self.close_adjust()

    def toggle_pause(self):
        if self._last is None:
            return
        if self._last.phase.value == "paused":
            self.app.resume()
        elif self._last.phase.value == "running":
            self.app.pause()

    def refresh(self):
        super().refresh()
        self.stop_button.text = _("STOP")
        self.adjust_button.text = _("Adjust")
        if self.adjust_view is not None:
            self.adjust_view.refresh()
        if self._last is not None:
            self.render(self._last)

    def elapsed_seen_s(self, session_id) -> float:
        """The most stimulation time this screen showed for `session_id` (the state of an
        ended session may leave out the part of the step it ended in)."""
        sid, seen = self._elapsed_seen
        return seen if sid == session_id else 0.0

    def render(self, state):
        self._last = state
        sid, seen = self._elapsed_seen
        self._elapsed_seen = (state.session_id, max(seen if sid == state.session_id else 0.0,
                                                    state.elapsed_s))
        if len(self.controls) != len(state.channels):
            self.channels_box.clear_widgets()
            self.controls = [ChannelControl(self, i) for i in range(len(state.channels))]
            for c in self.controls:
                self.channels_box.add_widget(c)
        if state.block_index >= 0:
            label = state.block_label
            blocks = self._blocks()
            if not label and state.block_index < len(blocks):
                label = blocks[state.block_index].label   # between steps (a pause): the plan's name
            if state.cycles_total > 0:
                self.block.text = f_("Block {i} of {n}: {label}  ·  {c} of {cn}", i=state.block_index + 1,
                                     n=state.blocks_total, label=label,
                                     c=min(state.cycle_index + 1, state.cycles_total), cn=state.cycles_total)
            else:
                self.block.text = f_("Block {i} of {n}: {label}", i=state.block_index + 1,
                                     n=state.blocks_total, label=label)
        else:
            self.block.text = ""
        self.left.text = f_("Time left {t}", t=clock_text(state.left_s))
        p = state.phase.value
        if p == "paused":
            self.phase.text = _("PAUSED")
            self.phase.color = Theme.text
            self.phase_card.bg = Theme.card_hi
            self.count.text = ""
        elif p == "running":
            self.phase.text = _("CONTRACT") if state.contracting else _("REST")
            self.phase.color = Theme.warn_text
            self.phase_card.bg = Theme.contract if state.contracting else Theme.rest
            self.count.color = Theme.warn_text
            self.count.text = str(max(0, int(math.ceil(state.phase_left_s))))
        elif p == "ready":
            self.phase.text = _("Starting ...")
            self.phase.color = Theme.text
            self.phase_card.bg = Theme.card
            self.count.text = ""
        else:
            self.phase.text = _("Stopped") if p != "completed" else _("Finished")
            self.phase.color = Theme.text
            self.phase_card.bg = Theme.card
            self.count.text = ""
        self.pause_button.text = _("Continue") if p == "paused" else _("Pause")
        self.pause_button.bg = Theme.go if p == "paused" else Theme.card_hi
        self.pause_button.disabled = p not in ("running", "paused")
        notice = notice_text(state.notice)
        nch = dict(state.notice.params).get("channel") if state.notice is not None else None
        for i, (ctl, ch) in enumerate(zip(self.controls, state.channels)):
            here = notice if (nch is None and i == 0) or nch == i else ""
            ctl.render(ch, state, here)
        want_adjust = self.can_adjust(state)
        if want_adjust and self.adjust_button.parent is None:
            self.side.add_widget(self.adjust_button)
        elif not want_adjust and self.adjust_button.parent is not None:
            self.side.remove_widget(self.adjust_button)
        if self.adjusting:
            if want_adjust:
                self.adjust_view.render(state)
            else:
                self.close_adjust()
