"""Whole-screen alerts: e-stop, electrode loss, faults. Each says what happened, that the
output is off, and what to do next. It covers every screen until the engine clears it."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout

from .i18n import _
from .kind_texts import alert_texts  # the one table of the engine's kinds
from .widgets import BigButton, Text, Theme, paint_background


class AlertOverlay(FloatLayout):
    def __init__(self, app, **kw):
        super().__init__(**kw)
        self.app = app
        self.alert = None
        self.state = None
        self.box = BoxLayout(orientation="vertical", padding=(24, 12, 24, 16), spacing=6)
        paint_background(self.box, Theme.stop)
        self.title = Text("", size=52, bold=True, size_hint_y=None, height=64)
        self.what = Text("", size=Theme.font_large - 4, bold=True, size_hint_y=None, valign="top", fit=True)
        self.steps = Text("", size=Theme.font_body + 2, valign="top")
        # What the patient must do before OK or Continue works (the technical detail of
        # the alert is in the log, not on the patient's screen).
        self.hint = Text("", size=Theme.font_body, bold=True, size_hint_y=None, height=0, fit=True)
        row = BoxLayout(size_hint_y=None, height=84, spacing=16)
        self.ok = BigButton("", bg=Theme.text, fg=Theme.warn_text, size=Theme.font_large)
        self.ok.bind(on_release=lambda *_: self.app.acknowledge())
        # Shown greyed while an electrode is loose: Continue works once contact is back.
        self.wait_continue = BigButton("", bg=Theme.disabled, size=Theme.font_large)
        self.wait_continue.disabled = True
        self.stop = BigButton("", bg=Theme.bg, size=Theme.font_large)
        self.stop.bind(on_press=lambda *_: self.app.stop_session())  # as the finger lands
        row.add_widget(self.ok)
        row.add_widget(self.stop)
        self.row = row
        for w in (self.title, self.what, self.steps, self.hint, row):
            self.box.add_widget(w)
        self.box._bg_color.rgba = Theme.stop

    @property
    def showing(self) -> bool:
        return self.box.parent is not None

    def render(self, state):
        self.state = state
        alert = state.alert if state is not None else None
        if alert is not None and state.phase.ended and not alert.needs_ack:
            alert = None           # e.g. an electrode alert of a session stopped since
        if alert is None:
            if self.showing:
                self.remove_widget(self.box)
            self.alert = None
            return
        if not self.showing:
            self.add_widget(self.box)
        if alert != self.alert:
            self.alert = alert
            self.refresh()
        self._show_hint(state)

    def _show_hint(self, state) -> None:
        notice = state.notice if state is not None else None
        kind = getattr(self.alert.kind, "value", self.alert.kind) if self.alert is not None else None
        if notice is not None and notice.kind == "estop_pressed":
            hint = _("The stop button is still pressed. Turn it to release it, then touch OK.")
        elif kind == "lead_off":
            hint = _("Continue works again when the pad has contact.")
        else:
            hint = ""
        if hint != self.hint.text:
            self.hint.text = hint
        if not hint:
            self.hint.height = 0

    def on_touch_down(self, touch):
        if self.showing and self.collide_point(*touch.pos):
            super().on_touch_down(touch)
            return True          # nothing under a whole-screen alert takes touches
        return False

    def on_touch_up(self, touch):
        if self.showing and self.collide_point(*touch.pos):
            super().on_touch_up(touch)
            return True
        return False

    def on_touch_move(self, touch):
        return self.showing and self.collide_point(*touch.pos)

    def refresh(self):
        a = self.alert
        if a is None:
            return
        channels = self.state.channels if self.state is not None else ()
        title, what, steps = alert_texts(a, channels)
        kind = getattr(a.kind, "value", a.kind)
        lead = kind == "lead_off"
        self.box._bg_color.rgba = Theme.warn if lead else Theme.stop
        fg = Theme.warn_text if lead else Theme.text
        for w in (self.title, self.what, self.steps, self.hint):
            w.color = fg
        self.title.text = title
        self.what.text = what
        self.steps.text = "\n".join(steps)
        self.ok.text = _("OK")
        self.wait_continue.text = _("Continue")
        self.stop.text = _("STOP")
        self.row.clear_widgets()
        if a.needs_ack:
            self.row.add_widget(self.ok)
        elif lead:
            self.row.add_widget(self.wait_continue)
        ended = self.state is not None and self.state.phase.ended
        if not ended:
            self.stop.bg = Theme.stop if lead else Theme.bg
            self.row.add_widget(self.stop)
        self._show_hint(self.state)
