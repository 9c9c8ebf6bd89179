"""After: what was done, pain (0-10) and effort (Borg CR10) in a few taps, an optional
comment, then Save."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.textinput import TextInput

from .base import BaseScreen
from .i18n import N_, _, f_, number
from .widgets import BigButton, Card, Text, Theme

PAIN_VALUES = tuple(range(11))
EFFORT_VALUES = (0, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)     # Borg CR10 (halves allowed)


def status_text(status: str) -> str:
    return {"completed": _("Session completed"), "stopped": _("Session stopped"),
            "aborted": _("Session ended by a safety stop"),
            "interrupted": _("Session interrupted")}.get(status, status)


class Scale(BoxLayout):
    """A row of numbered buttons; one can be chosen."""

    def __init__(self, values, on_pick, **kw):
        super().__init__(spacing=4, size_hint_y=None, height=64, **kw)
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
        # Save sits in the header and the comment near the top, so that the on-screen
        # keyboard (docked at the bottom of a keyboardless touchscreen) hides neither.
        self.save = BigButton("", bg=Theme.go, size=Theme.font_large, size_hint_x=None, width=200)
        self.save.bind(on_release=lambda *_: self.do_save())
        self.header_buttons.add_widget(self.save)
        self.header_buttons.width = 200
        card = Card(size_hint_y=None, height=56, padding=(12, 4))
        self.summary = Text("", size=Theme.font_body - 2, bold=True)
        card.add_widget(self.summary)
        self.body.add_widget(card)
        self.comment = TextInput(multiline=False, font_size=Theme.font_body, padding=(10, 14),
                                 size_hint_y=None, height=60,
                                 background_color=(1, 1, 1, 1), foreground_color=(0, 0, 0, 1))
        self.body.add_widget(self.comment)
        self.pain_label = Text("", size=Theme.font_body - 2, size_hint_y=None, height=28)
        self.pain = Scale(PAIN_VALUES, lambda v: self.refresh())
        self.effort_label = Text("", size=Theme.font_body - 2, size_hint_y=None, height=28)
        self.effort = Scale(EFFORT_VALUES, lambda v: self.refresh())
        for w in (self.pain_label, self.pain, self.effort_label, self.effort):
            self.body.add_widget(w)
        self.body.add_widget(BoxLayout())      # what is left over goes below, not above
        self.result = None

    def set_result(self, state):
        self.result = state
        self.pain.value = self.effort.value = None
        self.comment.text = ""
        for s in (self.pain, self.effort):
            for b in s.buttons.values():
                b.bg = Theme.card_hi

    def _logged(self, session_id):
        store = self.app.svc.store
        if not session_id or store is None or not hasattr(store, "session"):
            return None
        try:
            return store.session(session_id).get("channels")
        except Exception:
            return None

    def do_save(self):
        if self.pain.value is None or self.effort.value is None:
            self.refresh()
            return
        self.app.finish_session(self.pain.value, self.effort.value, self.comment.text.strip())

    def refresh(self):
        super().refresh()
        st = self.result
        if st is not None:
            mins = st.elapsed_s / 60
            contr = [c.contractions_done for c in st.channels]
            peaks = [c.peak_ma for c in st.channels]
            logged = self._logged(st.session_id)
            if logged:   # what the log recorded is what the clinician will read
                contr = [c.get("contractions", 0) for c in logged]
                peaks = [c.get("peak_ma", 0.0) for c in logged]
            self.summary.text = f_("{status}: {minutes} min, {contractions} contractions, highest {peak} mA",
                                   status=status_text(st.phase.value), minutes=number(mins, 1 if mins < 10 else 0),
                                   contractions=" / ".join(str(c) for c in contr),
                                   peak=" / ".join(number(p, 0 if float(p).is_integer() else 1) for p in peaks))
        self.pain_label.text = _("Pain now: 0 = none, 10 = the worst")
        self.effort_label.text = _("How hard was it? 0 = nothing, 10 = the most you can (Borg CR10)")
        self.comment.hint_text = _("Comment (optional)")
        self.save.text = _("Save")
        missing = self.pain.value is None or self.effort.value is None
        self.save.bg = Theme.disabled if missing else Theme.go
