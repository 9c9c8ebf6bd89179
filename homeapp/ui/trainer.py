"""The trainer's panel: on the simulated board only (never on a real device), a strip at
the top that presses the e-stop and detaches or reattaches an electrode, so a
demonstration can show every alert. It acts on the simulated board, as a hand would."""
from __future__ import annotations

import logging

from kivy.uix.boxlayout import BoxLayout

from .i18n import _, f_
from .widgets import BigButton, Text, Theme, paint_background, rgb

log = logging.getLogger(__name__)
PANEL_H = 64


class TrainerPanel(BoxLayout):
    def __init__(self, app, **kw):
        super().__init__(size_hint_y=None, height=PANEL_H, padding=(8, 2), spacing=6, **kw)
        paint_background(self, rgb("#3B2A63"))
        self.app = app
        self.estop_down = False
        self.leads = [True, True]
        self.label = Text("", size=16, bold=True, size_hint_x=None, width=130)
        self.add_widget(self.label)
        self.estop = BigButton("", bg=Theme.stop, size=18)
        self.estop.bind(on_release=lambda *_: self.toggle_estop())
        self.add_widget(self.estop)
        self.lead_buttons = []
        for ch in range(2):
            b = BigButton("", bg=Theme.card_hi, size=18)
            b.bind(on_release=lambda _b, ch=ch: self.toggle_lead(ch))
            self.lead_buttons.append(b)
            self.add_widget(b)
        self.refresh()

    @property
    def board(self):
        """The trainer's hands on the simulated board (homeapp.device.TrainerHands)."""
        return self.app.svc.trainer_hands

    def toggle_estop(self):
        b = self.board
        if b is None:
            return
        if self.estop_down:
            b.release_estop()
        else:
            b.press_estop()
        self.estop_down = not self.estop_down
        self._check()
        self.refresh()

    def toggle_lead(self, ch):
        b = self.board
        if b is None:
            return
        self.leads[ch] = not self.leads[ch]
        b.set_lead(ch, self.leads[ch])
        self._check()
        self.refresh()

    def _check(self):
        """Let the engine see the change now rather than at its next tick (on the link's
        worker: never on the UI thread, never on a thread of the panel's own)."""
        link = self.app.link
        if link is not None:
            link.check_now()

    def refresh(self):
        b = self.board
        if b is not None:
            self.estop_down = b.estop_pressed
            self.leads = [b.lead_connected(ch) for ch in range(2)]
        self.label.text = _("TRAINER (simulated board)")
        self.estop.text = _("Release e-stop") if self.estop_down else _("Press e-stop")
        for ch, b in enumerate(self.lead_buttons):
            b.text = (f_("Reattach electrode {n}", n=ch + 1) if not self.leads[ch]
                      else f_("Detach electrode {n}", n=ch + 1))
            b.bg = Theme.warn if not self.leads[ch] else Theme.card_hi
            b.fg = Theme.warn_text if not self.leads[ch] else Theme.text
