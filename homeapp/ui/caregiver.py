"""Caregiver mode (PIN): unlock a supervised session, stop a session, see alerts and
history. Also the PIN gate shared with clinician mode."""
from __future__ import annotations

import datetime as dt

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.scrollview import ScrollView

from .base import BaseScreen
from .i18n import N_, _, f_
from .widgets import BigButton, Card, PinPad, ProblemText, Text, Theme

ALERT_KINDS = ("estop", "lead_off", "fault", "watchdog", "refused")


def event_text(kind: str, detail: dict) -> str:
    ch = detail.get("channel")
    if kind == "refused" and not isinstance(ch, int):
        return _("Request refused (outside the prescription)")
    n = (ch + 1) if isinstance(ch, int) else ""
    return {
        "estop": _("Emergency stop pressed"),
        "lead_off": f_("Electrode {n} lost contact", n=n),
        "fault": _("Stimulator fault"),
        "watchdog": _("Program stopped answering"),
        "refused": f_("Request refused on channel {n} (above the limit)", n=n),
    }.get(kind, kind)


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
        row = BoxLayout(size_hint_y=None, height=90, spacing=8)
        self.unlock = BigButton("", bg=Theme.primary, size=Theme.font_body)
        self.unlock.bind(on_release=lambda *_: self.toggle_unlock())
        self.stop = BigButton("", bg=Theme.stop, size=Theme.font_body)
        self.stop.bind(on_press=lambda *_: self.do_stop())  # as the finger lands
        self.history = BigButton("", bg=Theme.card_hi, size=Theme.font_body)
        self.history.bind(on_release=lambda *_: self.app.go("history"))
        self.pads = BigButton("", bg=Theme.card_hi, size=Theme.font_body)
        self.pads.bind(on_release=lambda *_: self.pads_changed())
        for w in (self.unlock, self.stop, self.pads, self.history):
            row.add_widget(w)
        self.panel.add_widget(row)
        self.status = Text("", size=Theme.font_body, bold=True, size_hint_y=None, height=36)
        self.panel.add_widget(self.status)
        card = Card(orientation="vertical")
        self.alerts_title = Text("", size=Theme.font_body, bold=True, size_hint_y=None, height=32)
        card.add_widget(self.alerts_title)
        sv = ScrollView(do_scroll_x=False, bar_width=10)
        self.alerts = Text("", size=Theme.font_small, fit=True, valign="top", size_hint_y=None)
        sv.add_widget(self.alerts)
        card.add_widget(sv)
        self.panel.add_widget(card)

    def toggle_unlock(self):
        self.app.svc.caregiver_unlocked = not self.app.svc.caregiver_unlocked
        self.refresh()

    def do_stop(self):
        self.app.stop_session()
        self.refresh()

    def pads_changed(self):
        self.app.svc.pads_changed()
        self._pads_done = True
        self.refresh()

    def refresh_panel(self):
        svc = self.app.svc
        self.unlock.text = _("Next session unlocked") if svc.caregiver_unlocked else _("Unlock the next session")
        self.unlock.bg = Theme.go if svc.caregiver_unlocked else Theme.primary
        state = self.app.state
        active = state is not None and state.phase.value in ("running", "paused")
        self.stop.text = _("STOP the session")
        self.stop.disabled = not active
        self.pads.text = _("New pads put on") if not getattr(self, "_pads_done", False) else _("Pads noted")
        self.history.text = _("History")
        self.status.text = (_("A session is running.") if active else _("No session is running."))
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
