"""After: what was done (per channel, by its name, against the plan), pain (0-10) and
effort (0-10, the Borg CR10 scale in the log) in a few taps, an optional comment, then
Save; or Skip, which the log records as not answered."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.textinput import TextInput

from .base import BaseScreen
from .i18n import N_, _, f_, ma_text, number
from .widgets import BigButton, Card, Text, Theme

PAIN_VALUES = tuple(range(11))
EFFORT_VALUES = (0, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)     # Borg CR10 (halves allowed)


def duration_text(seconds: float) -> str:
    """A time in minutes and seconds, in words a patient reads ("2 min 5 s")."""
    s = max(0, int(round(seconds)))
    m, s = divmod(s, 60)
    if m and s:
        return f_("{m} min {s} s", m=m, s=s)
    if m:
        return f_("{m} min", m=m)
    return f_("{s} s", s=s)


def whole_ma(ma: float) -> str:
    """Whole mA, as the session screen showed them (the device's one rounding)."""
    return ma_text(ma)


def summary_lines(status: str, elapsed_s: float, total_s: float, channels, planned: int | None) -> list[str]:
    """The After summary: how long against the plan, then one line per channel by its name:
    contractions done against those planned and the highest intensity in whole mA.
    `channels`: (label, contractions, peak_ma) per channel."""
    lines = [f_("{status}: {done} of {planned}", status=status_text(status),
                done=duration_text(elapsed_s), planned=duration_text(total_s))
             if total_s > 0 else f_("{status}: {done}", status=status_text(status),
                                     done=duration_text(elapsed_s))]
    for label, done, peak in channels:
        if planned:
            lines.append(f_("{label}: {done} of {planned} contractions, up to {ma} mA", label=label,
                            done=done, planned=planned, ma=whole_ma(peak)))
        else:
            lines.append(f_("{label}: {done} contractions, up to {ma} mA", label=label, done=done,
                            ma=whole_ma(peak)))
    return lines


def status_text(status: str) -> str:
    return {"completed": _("Session completed"), "stopped": _("Session stopped"),
            "aborted": _("Session ended by a safety stop"),
            "interrupted": _("Session interrupted")}.get(status, status)


class Scale(BoxLayout):
    """A row of numbered buttons; one can be chosen."""

    def __init__(self, values, on_pick, **kw):
        super().__init__(spacing=4, size_hint_y=None, height=60, **kw)
        self.values = values
        self.value = None
        self.buttons = {}
        for v in values:
            b = BigButton(number(v, 1 if v % 1 else 0), bg=Theme.card_hi, size=Theme.font_body)
            b.bind(on_release=lambda _b, v=v: (self.pick(v), on_pick(v)))
            self.buttons[v] = b
            self.add_widget(b)

    def pick(self, v):
        self.value = v
        for k, b in self.buttons.items():
            b.bg = Theme.primary if k == v else Theme.card_hi
            b.text = number(k, 1 if k % 1 else 0)


class AfterScreen(BaseScreen):
    title_msg = N_("How did it go?")

    def build(self):
        # Slimmer header and gaps (every button still 60 px): everything fits in the 416 px
        # the simulated board's trainer panel leaves, nothing pushed over the header.
        self.header.height = 60
        self.root_box.padding = (10, 4, 10, 6)
        self.body.spacing = 4
        # Save and Skip sit in the header and the comment near the top, so that the
        # on-screen keyboard (docked at the bottom of a keyboardless touchscreen) hides none.
        self.skip = BigButton("", bg=Theme.card_hi, size=Theme.font_body, size_hint_x=None, width=150)
        self.skip.bind(on_release=lambda *_: self.do_skip())
        self.save = BigButton("", bg=Theme.go, size=Theme.font_large, size_hint_x=None, width=170)
        self.save.bind(on_release=lambda *_: self.do_save())
        self.header_buttons.add_widget(self.skip)
        self.header_buttons.add_widget(self.save)
        self.header_buttons.width = 150 + 8 + 170
        self.summary = Text("", size=Theme.font_small, bold=True, valign="top", fit=True)
        self.summary_card = Card(size_hint_y=None, padding=(12, 6))
        self.summary_card.add_widget(self.summary)
        # The card is as tall as its lines: nothing under it is covered, nothing cut.
        self.summary.bind(height=lambda _w, h: setattr(self.summary_card, "height", h + 12))
        self.body.add_widget(self.summary_card)
        self.comment = TextInput(multiline=False, font_size=Theme.font_body, padding=(10, 12),
                                 size_hint_y=None, height=54,
                                 background_color=(1, 1, 1, 1), foreground_color=(0, 0, 0, 1))
        self.body.add_widget(self.comment)
        self.pain_label = Text("", size=Theme.font_small, size_hint_y=None, height=26, bold=True)
        self.pain = Scale(PAIN_VALUES, lambda v: self.refresh())
        self.effort_label = Text("", size=Theme.font_small, size_hint_y=None, height=26, bold=True)
        self.effort = Scale(EFFORT_VALUES, lambda v: self.refresh())
        for w in (self.pain_label, self.pain, self.effort_label, self.effort):
            self.body.add_widget(w)
        self.body.add_widget(BoxLayout())      # what is left over goes below, not above
        self.result = None
        self.elapsed_s = 0.0
        self.planned_contractions: int | None = None
        self.tried_save = False

    def set_result(self, state):
        self.result = state
        session = self.app.screens.get("session") if hasattr(self.app.screens, "get") else None
        seen = session.elapsed_seen_s(state.session_id) if hasattr(session, "elapsed_seen_s") else 0.0
        self.elapsed_s = max(float(state.elapsed_s), seen)
        rx = getattr(getattr(self.app, "engine", None), "rx", None)
        planned = getattr(rx, "planned_contractions", None)
        self.planned_contractions = planned if isinstance(planned, int) and planned > 0 else None
        self.pain.value = self.effort.value = None
        self.comment.text = ""
        self.tried_save = False
        for s in (self.pain, self.effort):
            for b in s.buttons.values():
                b.bg = Theme.card_hi

    def _logged(self, session_id):
        session = self.app.svc.logged_session(session_id)
        return session.get("channels") if session else None

    @property
    def missing(self) -> list[str]:
        """Which answers Save still needs ("pain", "effort")."""
        return [name for name, scale in (("pain", self.pain), ("effort", self.effort)) if scale.value is None]

    def do_save(self):
        if self.missing:
            self.tried_save = True
            self.refresh()
            return
        self.app.finish_session(self.pain.value, self.effort.value, self.comment.text.strip())

    def do_skip(self):
        """A tired patient leaves the questions: the log records them as not answered."""
        self.app.skip_report(self.comment.text.strip())

    def refresh(self):
        super().refresh()
        st = self.result
        if st is not None:
            labels = [c.label for c in st.channels]
            contr = [c.contractions_done for c in st.channels]
            peaks = [c.peak_ma for c in st.channels]
            logged = self._logged(st.session_id)
            if logged:   # what the log recorded is what the clinician will read
                contr = [c.get("contractions", 0) for c in logged]
                peaks = [c.get("peak_ma", 0.0) for c in logged]
            self.summary.text = "\n".join(summary_lines(st.phase.value, self.elapsed_s, st.total_s,
                                                         zip(labels, contr, peaks), self.planned_contractions))
        missing = self.missing
        pain_q = _("Pain now: 0 = none, 10 = the worst")
        effort_q = _("How hard was it? 0 = nothing at all, 10 = the hardest you can")
        show = self.tried_save
        self.pain_label.text = (_("Choose a number: pain now (0 none, 10 worst)")
                                if show and "pain" in missing else pain_q)
        self.effort_label.text = (_("Choose a number: how hard it was (0 nothing, 10 hardest)")
                                  if show and "effort" in missing else effort_q)
        self.pain_label.color = Theme.warn if show and "pain" in missing else Theme.text
        self.effort_label.color = Theme.warn if show and "effort" in missing else Theme.text
        self.comment.hint_text = _("Comment (optional)")
        self.save.text = _("Save")
        self.skip.text = _("Skip")
        self.save.bg = Theme.disabled if missing else Theme.go
