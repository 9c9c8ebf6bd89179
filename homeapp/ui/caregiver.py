"""Caregiver mode (PIN): unlock a supervised session, note new pads, see alerts and
history; it says how to stop a session (the STOP on the session screen). Also the PIN
gate shared with clinician mode."""
from __future__ import annotations

import datetime as dt

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.scrollview import ScrollView

from .base import BaseScreen
from .i18n import N_, _, f_
from .kind_texts import event_text  # the one table of the engine's kinds
from .widgets import BigButton, Card, PinPad, ProblemText, Text, Theme

ALERT_KINDS = ("estop", "lead_off", "fault", "watchdog", "refused")


class PinScreen(BaseScreen):
    role = "caregiver"
    back_to = "home"
    prompt_msg = ""

    def build(self):
        self.unlocked = False
        self.gate = BoxLayout(spacing=16)
        left = BoxLayout(orientation="vertical")
        self.prompt = Text("", size=Theme.font_large, bold=True)
        self.hint = ProblemText("", size=Theme.font_small, color=Theme.muted)
        left.add_widget(self.prompt)
        left.add_widget(self.hint)
        self.gate.add_widget(left)
        self.pad = PinPad(self.check_pin, ok_text="OK", clear_text="", size_hint_x=None, width=330)
        self.gate.add_widget(self.pad)
        self.panel = BoxLayout(orientation="vertical", spacing=8)
        self.build_panel()
        self.body.add_widget(self.gate)
        self.wrong = False

    def build_panel(self):
        pass

    def lock(self):
        self.unlocked = False
        self.wrong = False
        self.pad.clear()
        self.body.clear_widgets()
        self.body.add_widget(self.gate)

    def check_pin(self, pin):
        if self.app.svc.verify_pin(self.role, pin):
            self.unlocked = True
            self.body.clear_widgets()
            self.body.add_widget(self.panel)
        else:
            self.wrong = True
        self.refresh()

    def refresh(self):
        super().refresh()
        self.prompt.text = _(self.prompt_msg)
        locked_s = self.app.svc.pin_lockout_s(self.role)
        if locked_s > 0:
            self.hint.show_problem(f_("Too many wrong PINs. Try again in {minutes} min.",
                                      minutes=max(1, round(locked_s / 60))))
        elif self.wrong:
            self.hint.show_problem(_("Wrong PIN. Try again."))
        elif not self.app.svc.pin_configured(self.role) and self.app.svc.simulated:
            self.hint.show(f_("Simulated board, no PIN set: use {pin}.", pin="0000"), Theme.muted)
        else:
            self.hint.show("")
        self.pad.buttons["ok"].text = _("OK")
        self.pad.buttons["clear"].text = _("Clear")
        if self.unlocked:
            self.refresh_panel()

    def refresh_panel(self):
        pass


class CaregiverScreen(PinScreen):
    role = "caregiver"
    title_msg = N_("Caregiver")
    prompt_msg = N_("Caregiver: enter your PIN")

    def build_panel(self):
        row = BoxLayout(size_hint_y=None, height=76, spacing=8)
        self.unlock = BigButton("", bg=Theme.primary, size=Theme.font_body)
        self.unlock.bind(on_release=lambda *_: self.toggle_unlock())
        self.history = BigButton("", bg=Theme.card_hi, size=Theme.font_body)
        self.history.bind(on_release=lambda *_: self.app.go("history"))
        self.pads = BigButton("", bg=Theme.card_hi, size=Theme.font_body)
        self.pads.bind(on_release=lambda *_: self.pads_changed())
        for w in (self.unlock, self.pads, self.history):
            row.add_widget(w)
        self.panel.add_widget(row)
        # What the unlock does, and where a session is stopped: this screen opens from
        # Home only, so during a session the STOP on the session screen is the one to touch.
        self.help = Card(orientation="vertical", spacing=4, padding=(12, 6), size_hint_y=None)
        self.unlock_help = Text("", size=Theme.font_small, fit=True, size_hint_y=None)
        self.stop_help = Text("", size=Theme.font_small, fit=True, size_hint_y=None)
        for w in (self.unlock_help, self.stop_help):
            self.help.add_widget(w)
            w.bind(height=self._fit_help)
        self.panel.add_widget(self.help)
        self.status = Text("", size=Theme.font_body - 2, bold=True, size_hint_y=None, height=32)
        self.panel.add_widget(self.status)
        card = Card(orientation="vertical")
        self.alerts_title = Text("", size=Theme.font_body, bold=True, size_hint_y=None, height=32)
        card.add_widget(self.alerts_title)
        sv = ScrollView(do_scroll_x=False, bar_width=10)
        self.alerts = Text("", size=Theme.font_small, fit=True, valign="top", size_hint_y=None)
        sv.add_widget(self.alerts)
        card.add_widget(sv)
        self.panel.add_widget(card)

    def _fit_help(self, *_a):
        self.help.height = self.unlock_help.height + self.stop_help.height + 4 + 12

    def toggle_unlock(self):
        self.app.svc.caregiver_unlocked = not self.app.svc.caregiver_unlocked
        self.refresh()

    def pads_changed(self):
        self.app.svc.pads_changed()
        self._pads_done = True
        self.refresh()

    def refresh_panel(self):
        svc = self.app.svc
        self.unlock.text = _("Next session unlocked") if svc.caregiver_unlocked else _("Unlock the next session")
        self.unlock.bg = Theme.go if svc.caregiver_unlocked else Theme.primary
        self.unlock_help.text = _("Unlock the next session: a program that needs a caregiver present "
                                  "starts only after this. It holds for one session, and ends when a "
                                  "new program is installed.")
        self.stop_help.text = _("To stop a session: touch the red STOP on the session screen. It stops "
                                "at once, whoever touches it.")
        self.pads.text = _("New pads put on") if not getattr(self, "_pads_done", False) else _("Pads noted")
        self.history.text = _("History")
        rx = svc.rx
        if rx is None:
            self.status.text = _("No program on this device yet.")
        elif rx.supervised:
            self.status.text = _("This program needs a caregiver present.")
        else:
            self.status.text = _("This program does not need a caregiver present.")
        self.alerts_title.text = _("Recent alerts")
        lines = []
        for s in reversed(svc.sessions(full=True)[-30:]):
            for e in s.get("events", []):
                if e.get("kind") in ALERT_KINDS:
                    try:
                        when = dt.datetime.fromisoformat(s["started_at"]).strftime("%Y-%m-%d %H:%M")
                    except (KeyError, TypeError, ValueError):
                        when = "?"
                    lines.append(f"{when}  {event_text(e['kind'], e.get('detail') or {})}")
        self.alerts.text = "\n".join(lines[:40]) if lines else _("No alerts.")
