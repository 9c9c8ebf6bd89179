"""Home: today's session, a large Start, this week's adherence, warnings."""
from __future__ import annotations

import logging

from kivy.uix.boxlayout import BoxLayout

from .base import BaseScreen
from .i18n import LANGUAGE_NAMES, N_, _, f_, language
from .kind_texts import refusal_text  # the one table of the engine's kinds
from .widgets import BigButton, Card, Dot, Text, Theme

log = logging.getLogger(__name__)


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


#: Refusals that do not grey START: the caregiver unlocks the session in Preparation.
NOT_BLOCKING_ON_HOME = ("caregiver",)


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


#: How often Home asks again whether a session may start (the e-stop, the log).
START_CHECK_S = 1.0
#: Messages Home shows at most under the program, and a one-line card's height.
MAX_CARDS = 3
CARD_MIN_H = 44


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
        # the name wraps (fit: the label grows to its lines), never cut with "…"
        self.program = Text("", size=Theme.font_large - 4, bold=True, size_hint_y=None, height=40,
                            fit=True, valign="top")
        self.duration = Text("", size=Theme.font_body - 2, size_hint_y=None, height=32, fit=True,
                             valign="top")
        self.due = Text("", size=Theme.font_body, bold=True, size_hint_y=None, height=34)
        self.week = Text("", size=Theme.font_body - 2, size_hint_y=None, height=32)
        self.week_dots = BoxLayout(size_hint_y=None, height=36, spacing=8, padding=(0, 2))
        for w in (self.program, self.duration, self.due, self.week, self.week_dots):
            self.info.add_widget(w)
        self._info_filler = BoxLayout()      # the lines sit at the top, the room left below
        self.info.add_widget(self._info_filler)
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
        # The e-stop and the log can change while Home is shown: asked again every second
        # (the same quick check), so the screen says so at once.
        from kivy.clock import Clock
        self._watch = Clock.schedule_interval(self._check_start, START_CHECK_S)
        # Laid out again before the next frame is drawn whenever a size changes.
        self._messages: list = []
        self._refit = Clock.create_trigger(self._fit_layout, -1)
        self.body.bind(size=self._refit)
        for w in (self.program, self.duration):
            w.bind(height=self._refit)

    def _check_start(self, _dt) -> None:
        if self.get_root_window() is None or self.app.engine is not None \
                or self.manager is None or self.manager.current != self.name:
            return
        if getattr(self.app, "overlay", None) is not None and getattr(self.app.overlay, "showing", False):
            return
        if self._refusal_key(self._refusals()) != getattr(self, "_shown_key", None):
            self.refresh()

    def _refusals(self) -> list:
        svc = self.app.svc
        if svc.rx is None or not hasattr(svc, "start_refusals"):
            return []
        try:
            return list(svc.start_refusals())
        except Exception as e:  # a check that fails is a reason not to start, said as it is
            log.exception("the start check failed")
            return [str(e)]

    @staticmethod
    def _refusal_key(refusals) -> tuple:
        return tuple((getattr(r, "kind", None), str(r)) for r in refusals)

    def refresh(self):
        super().refresh()
        svc = self.app.svc
        self.lang_button.text = LANGUAGE_NAMES["sv" if language() == "en" else "en"]
        rx = svc.rx
        refusals = self._refusals()
        self._shown_key = self._refusal_key(refusals)
        blocking = [r for r in refusals if getattr(r, "kind", None) not in NOT_BLOCKING_ON_HOME]
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
                # a day's first minute is the day itself to a patient
                "later": f_("Next session from {at}", at=due.get("at", "").removesuffix(" 00:00")),
            }.get(due["when"], "")
            self.due.color = Theme.ok if due["when"] == "later" else Theme.text
            if blocking and due["when"] == "now":
                self.due.text = _("You cannot start now. See why below.")
                self.due.color = Theme.bad
            adh = svc.adherence()
            if adh:
                done, planned = adh
                self.week.text = f_("This week: {done} of {planned} sessions", done=done, planned=planned)
                dots = [c for c in self.week_dots.children if isinstance(c, Dot)]
                if len(dots) != max(planned, done):
                    self.week_dots.clear_widgets()
                    # Made at their final size: a circle is drawn from its size when it is
                    # placed, and one sized after placing was drawn over the line above.
                    dots = [Dot(size_hint=(None, None), size=(30, 30)) for _i in range(max(planned, done))]
                    for d in dots:
                        self.week_dots.add_widget(d)
                    self.week_dots.add_widget(BoxLayout())
                    dots.reverse()  # children are listed last-added first
                for i, d in enumerate(reversed(dots)):
                    d.fill = Theme.ok if i < done else Theme.card_hi
            self.start.disabled = bool(blocking)
        self.start.text = _("START")
        if self.demo.parent:
            self.side_col.remove_widget(self.demo)
        if svc.demo_available() and (rx is None or svc.rx_demo):
            self.demo.text = _("Load DEMO program") if rx is None else _("Reload DEMO program")
            self.side_col.add_widget(self.demo)
        self.warn_box.clear_widgets()
        kinds = {getattr(r, "kind", None) for r in refusals}
        # what a refusal already says is not said twice
        warnings = [w for w in svc.warnings() if not (w.kind == "rx_expired" and "expired" in kinds)]
        arrived = svc.new_program_notice() if hasattr(svc, "new_program_notice") else None
        # The cards are made once and refilled: made on every refresh they leave native
        # memory behind on a device left on for months.
        if not hasattr(self, "_warn_cards"):
            self._arrived_card = self._card(Theme.ok, Theme.warn_text)
            self._warn_cards = [self._card(Theme.warn, Theme.warn_text) for _i in range(MAX_CARDS)]
            self._refusal_cards = [self._card(Theme.stop, Theme.text) for _i in range(MAX_CARDS)]
            self._note_cards = [self._card(Theme.warn, Theme.warn_text) for _i in range(MAX_CARDS)]
        # Why START is off comes first (red), then what the next step will ask (amber: the
        # caregiver's unlock), what is new, then the warnings (amber). The first two are
        # always shown; the others when there is room.
        notes = [r for r in refusals if r not in blocking]
        shown = [(c, refusal_text(r, self.app.svc), True) for c, r in zip(self._refusal_cards, blocking)]
        shown += [(c, refusal_text(r, self.app.svc), True) for c, r in zip(self._note_cards, notes)]
        if arrived:
            shown.append((self._arrived_card,
                          _("New program from your clinic. It is used from your next session."), False))
        shown += [(c, warning_text(w), False) for c, w in zip(self._warn_cards, warnings)]
        self._messages = []
        for card, text, always in shown[:MAX_CARDS]:
            card.message.text = text
            self._messages.append((card, always))
        self.sync_line.text = sync_text(svc.clinic_status() if hasattr(svc, "clinic_status") else None)
        self.sync_line.height = 26 if self.sync_line.text else 0
        self._fit_layout()

    def _card(self, bg, fg) -> Card:
        """A message card that grows to its text (a long reason wraps, never cut)."""
        card = Card(bg=bg, size_hint_y=None, height=CARD_MIN_H, padding=(12, 4))
        card.message = Text("", color=fg, size=Theme.font_body - 2, bold=True, fit=True)

        def fit(*_a):
            card.height = max(CARD_MIN_H, card.message.height + 8)
        card.message.bind(height=fit)
        card.add_widget(card.message)
        return card

    def _fit_layout(self, *_a) -> None:
        """The messages under the program, as many as leave the program's lines whole, the
        most important first: the red reasons START is off are always shown, and when even
        they leave no room the week's line and circles step aside. Everything is measured
        at the width it is drawn at, before the frame is drawn: right the first time."""
        width = self.body.width
        text_w = width - self.side_col.width - 10 - 24          # the row's spacing, the card's padding
        for t in (self.program, self.duration):
            t.width = text_w
            t.texture_update()
        self._compact(False)
        rows = [c for c in self.info.children if c is not self._info_filler]
        info_h = (sum(c.height for c in rows) + self.info.spacing * (len(rows) - 1)
                  + self.info.padding[1] + self.info.padding[3])
        room = self.body.height - info_h - self.sync_line.height - 2 * self.body.spacing
        self.warn_box.clear_widgets()
        used = 0.0
        for card, always in self._messages:
            card.width = width
            card.message.width = width - 24
            card.message.texture_update()
            h = card.height + (self.warn_box.spacing if used else 0)
            if used + h > room and not always:
                break
            self.warn_box.add_widget(card)
            used += h
        self.warn_box.height = used
        self._compact(used > room)

    def _compact(self, compact: bool) -> None:
        for w, h in ((self.week, 32), (self.week_dots, 36)):
            w.height = 0 if compact else h
            w.opacity = 0 if compact else 1
