"""Home: today's session, a large Start, this week's adherence, warnings."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout

from .base import BaseScreen
from .i18n import LANGUAGE_NAMES, N_, _, f_, language
from .widgets import BigButton, Card, Dot, Text, Theme


def minutes_text(seconds: float) -> str:
    m = max(1, round(seconds / 60))
    return f_("{m} min", m=m)


def warning_text(w) -> str:
    p = w.params
    if w.kind == "no_rx":
        return _("No program on this device yet. Your clinic loads it.")
    if w.kind == "demo":
        return _("DEMO program on the simulated board, not a prescription.")
    if w.kind == "rx_expired":
        return f_("Your program ended on {date}. Ask your clinic for a new one.", date=p["date"])
    if w.kind == "rx_expiring":
        if p["days"] == 0:
            return _("Your program ends today. Ask your clinic for a new one.")
        return f_("Your program ends in {days} days. Ask your clinic for a new one.", days=p["days"])
    if w.kind == "pads_old":
        return f_("The pads have been used {n} times. Put on new pads.", n=p["n"])
    if w.kind == "cut_short":
        return _("Your last session ended early.")
    return w.kind


def sync_text(status, now=None) -> str:
    """When the log last reached the clinic ("" when the device has no clinic)."""
    import datetime as dt
    if not status or not (status.get("url") or status.get("paired")):
        return ""
    last = status.get("last_ok_at")
    if not last:
        return _("Log not yet sent to your clinic")
    try:
        when = dt.datetime.fromisoformat(last).astimezone()
    except ValueError:
        return _("Log not yet sent to your clinic")
    now = now or dt.datetime.now().astimezone()
    if when.date() == now.date():
        return f_("Log sent to your clinic today at {time}", time=when.strftime("%H:%M"))
    return f_("Log last sent to your clinic on {date}", date=when.strftime("%Y-%m-%d"))


class HomeScreen(BaseScreen):
    title_msg = N_("Today's session")

    def build(self):
        self.lang_button = self.add_header_button("", lambda *_: self.app.toggle_language(), width=116)
        self.add_header_button(N_("History"), lambda *_: self.app.go("history"), width=120)
        self.add_header_button(N_("Caregiver"), lambda *_: self.app.go("caregiver"), width=130)
        self.add_header_button(N_("Clinic"), lambda *_: self.app.go("clinician"), width=144)
        for b in self.header_buttons.children:
            b.font_size = Theme.font_body - 2

        row = BoxLayout(spacing=10)
        self.info = Card(orientation="vertical", spacing=4)
        self.program = Text("", size=Theme.font_large - 4, bold=True, size_hint_y=None, height=40,
                            shorten=True, shorten_from="right")
        self.duration = Text("", size=Theme.font_body - 2, size_hint_y=None, height=32, shorten=True,
                             shorten_from="right")
        self.due = Text("", size=Theme.font_body, bold=True, size_hint_y=None, height=34)
        self.week = Text("", size=Theme.font_body - 2, size_hint_y=None, height=32)
        self.week_dots = BoxLayout(size_hint_y=None, height=36, spacing=8, padding=(0, 2))
        for w in (self.program, self.duration, self.due, self.week, self.week_dots):
            self.info.add_widget(w)
        row.add_widget(self.info)

        right = BoxLayout(orientation="vertical", size_hint_x=None, width=300, spacing=10)
        self.start = BigButton("", bg=Theme.go, size=56)
        self.start.bind(on_release=lambda *_: self.app.begin_preparation())
        self.demo = BigButton("", bg=Theme.card_hi, size=Theme.font_body, size_hint_y=None, height=80)
        self.demo.bind(on_release=lambda *_: self.app.load_demo())
        right.add_widget(self.start)
        row.add_widget(right)
        self.side_col = right
        self.body.add_widget(row)

        self.warn_box = BoxLayout(orientation="vertical", size_hint_y=None, spacing=6)
        self.body.add_widget(self.warn_box)
        self.sync_line = Text("", size=Theme.font_small - 2, color=Theme.muted, size_hint_y=None, height=26)
        self.body.add_widget(self.sync_line)

    def refresh(self):
        super().refresh()
        svc = self.app.svc
        self.lang_button.text = LANGUAGE_NAMES["sv" if language() == "en" else "en"]
        rx = svc.rx
        if rx is None:
            self.program.text = _("No program")
            self.duration.text = ""
            self.due.text = ""
            self.week.text = ""
            self.week_dots.clear_widgets()
            self.start.disabled = True
        else:
            prefix = "DEMO: " if svc.rx_demo else ""
            self.program.text = prefix + " + ".join(b.label for b in rx.blocks)
            chans = ", ".join(c.label for c in rx.channels)
            self.duration.text = f_("{duration}  ·  {channels}", duration=minutes_text(rx.duration_s), channels=chans)
            due = svc.due_text_params()
            self.due.text = {
                "now": _("Due: now"),
                "never": _("No more sessions under this program."),
                "later": f_("Next session from {at}", at=due.get("at", "")),
            }.get(due["when"], "")
            self.due.color = Theme.ok if due["when"] == "later" else Theme.text
            adh = svc.adherence()
            if adh:
                done, planned = adh
                self.week.text = f_("This week: {done} of {planned} sessions", done=done, planned=planned)
                dots = [c for c in self.week_dots.children if isinstance(c, Dot)]
                if len(dots) != max(planned, done):
                    self.week_dots.clear_widgets()
                    dots = [Dot(size_hint_x=None, width=30) for _i in range(max(planned, done))]
                    for d in dots:
                        self.week_dots.add_widget(d)
                    self.week_dots.add_widget(BoxLayout())
                    dots.reverse()  # children are listed last-added first
                for i, d in enumerate(reversed(dots)):
                    d.fill = Theme.ok if i < done else Theme.card_hi
            self.start.disabled = False
        self.start.text = _("START")
        if self.demo.parent:
            self.side_col.remove_widget(self.demo)
        if svc.demo_available() and (rx is None or svc.rx_demo):
            self.demo.text = _("Load DEMO program") if rx is None else _("Reload DEMO program")
            self.side_col.add_widget(self.demo)
        self.warn_box.clear_widgets()
        warnings = svc.warnings()
        arrived = svc.new_program_notice() if hasattr(svc, "new_program_notice") else None
        # The cards are made once and refilled: made on every refresh they leave native
        # memory behind on a device left on for months.
        if not hasattr(self, "_warn_cards"):
            self._arrived_card = Card(bg=Theme.ok, size_hint_y=None, height=44, padding=(12, 2))
            self._arrived_card.message = Text("", color=Theme.warn_text, size=Theme.font_body - 2,
                                              bold=True)
            self._arrived_card.add_widget(self._arrived_card.message)
            self._warn_cards = []
            for _i in range(3):
                c = Card(bg=Theme.warn, size_hint_y=None, height=44, padding=(12, 2))
                c.message = Text("", color=Theme.warn_text, size=Theme.font_body - 2, bold=True)
                c.add_widget(c.message)
                self._warn_cards.append(c)
        if arrived:
            self._arrived_card.message.text = _("New program from your clinic. It is used from your next session.")
            self.warn_box.add_widget(self._arrived_card)
        for c, w in zip(self._warn_cards, warnings[:3 - bool(arrived)]):
            c.message.text = warning_text(w)
            self.warn_box.add_widget(c)
        self.warn_box.height = 50 * len(self.warn_box.children)
        self.sync_line.text = sync_text(svc.clinic_status() if hasattr(svc, "clinic_status") else None)
