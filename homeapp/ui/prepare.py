"""Preparation: where the pads go, a skin check, live electrode contact per channel, and
the caregiver's PIN when the prescription asks for supervision."""
from __future__ import annotations

import logging

from kivy.clock import Clock
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.modalview import ModalView

from .base import BaseScreen
from .i18n import N_, _, f_
from .kind_texts import refusal_text  # the one table of the engine's kinds
from .placement import PlacementPicture, placement_for
from .widgets import BigButton, Card, Dot, PinPad, ProblemText, Text, Theme

log = logging.getLogger(__name__)

CONTACT_POLL_S = 0.5
#: The body picture's width: the placement text beside it needs the rest of the card to
#: show whole (Swedish is the longest) under the simulated board's trainer panel too.
PICTURE_W = 112
#: A header and a bottom row slimmer than elsewhere (the buttons still 60 px or more):
#: the height goes to the placement text.
HEADER_H = 60
BOTTOM_H = 72
#: The caregiver's PIN pop-up: nearly the whole 800 x 480 window; the pad's keys 60 px or more.
PIN_VIEW_SIZE = (780, 460)
PIN_PAD_W = 420


def placement_text(label: str) -> str:
    p = placement_for(label)
    if p is None:
        return _("Place the pads as your clinic showed you.")
    side = {"left": _("left"), "right": _("right"), "": ""}[p.side]
    texts = {
        "quadriceps": _("Front of the {side} thigh: one pad a hand's width below the hip, one a hand's width above the kneecap."),
        "hamstrings": _("Back of the {side} thigh: one pad below the buttock, one above the back of the knee."),
        "calf": _("Back of the {side} lower leg: one pad on the thickest part of the calf, one below it."),
        "tibialis": _("Front of the {side} lower leg, just outside the shin bone: one pad below the knee, one lower down."),
        "gluteus": _("{side} buttock: one pad on the middle of the buttock, one below it."),
        "biceps": _("Front of the {side} upper arm: one pad near the shoulder, one above the elbow."),
        "triceps": _("Back of the {side} upper arm: one pad near the shoulder, one above the elbow."),
        "forearm": _("Back of the {side} forearm: one pad below the elbow, one above the wrist."),
        "deltoid": _("{side} shoulder: one pad on top of the shoulder, one on the front of it."),
        "abdominals": _("Belly: one pad either side of the navel, a hand's width apart."),
        "lower back": _("Lower back: one pad either side of the spine, never on the spine itself."),
    }
    return texts[p.key].replace("{side}", side).strip().capitalize()


class ChannelPrep(Card):
    def __init__(self, index: int, label: str, **kw):
        super().__init__(orientation="vertical", spacing=2, padding=(10, 4), **kw)
        self.index = index
        self.label = label
        # The clinic's name for the channel wraps rather than being cut.
        self.name = Text("", size=Theme.font_body - 2, bold=True, color=Theme.channel[index % 2],
                         size_hint_y=None, height=28, fit=True)
        self.add_widget(self.name)
        row = BoxLayout(spacing=8)
        self.picture = PlacementPicture(label, index, size_hint_x=None, width=PICTURE_W)
        row.add_widget(self.picture)
        col = BoxLayout(orientation="vertical", spacing=2)
        self.where = Text("", size=Theme.font_small, valign="top")
        contact = BoxLayout(size_hint_y=None, height=40, spacing=8)
        self.dot = Dot(fill=Theme.disabled, size_hint_x=None, width=36)
        self.contact_text = Text("", size=Theme.font_body, bold=True)
        contact.add_widget(self.dot)
        contact.add_widget(self.contact_text)
        col.add_widget(self.where)
        col.add_widget(contact)
        row.add_widget(col)
        self.add_widget(row)
        self.contact = None

    def refresh(self):
        self.name.text = f_("{n}: {label}", n=self.index + 1, label=self.label)
        self.where.text = placement_text(self.label)
        self.show_contact(self.contact)

    def show_contact(self, contact):
        self.contact = contact
        if contact is None:
            self.dot.fill = Theme.disabled
            self.contact_text.text = _("Checking contact ...")
            self.contact_text.color = Theme.muted
        elif contact:
            self.dot.fill = Theme.ok
            self.contact_text.text = _("Contact good")
            self.contact_text.color = Theme.ok
        else:
            self.dot.fill = Theme.bad
            self.contact_text.text = _("No contact")
            self.contact_text.color = Theme.bad


class PrepareScreen(BaseScreen):
    title_msg = N_("Get ready")

    def build(self):
        self.header.height = HEADER_H
        self.add_header_button(N_("Cancel"), lambda *_: self.app.cancel_preparation(), width=140)
        self.channels_box = BoxLayout(spacing=8)
        self.body.add_widget(self.channels_box)
        self.why = Text("", size=Theme.font_small, color=Theme.warn, size_hint_y=None, height=28)
        self.body.add_widget(self.why)
        bottom = BoxLayout(size_hint_y=None, height=BOTTOM_H, spacing=8)
        self.skin = BigButton("", bg=Theme.card_hi, size=Theme.font_body - 2)
        self.skin.bind(on_release=lambda *_: self.toggle_skin())
        self.unlock = BigButton("", bg=Theme.primary, size=Theme.font_body - 2, size_hint_x=0.6)
        self.unlock.bind(on_release=lambda *_: self.ask_pin())
        self.begin = BigButton("", bg=Theme.go, size=Theme.font_large, size_hint_x=0.55)
        self.begin.bind(on_release=lambda *_: self.do_begin())
        bottom.add_widget(self.skin)
        bottom.add_widget(self.unlock)
        bottom.add_widget(self.begin)
        self.bottom = bottom
        self.body.add_widget(bottom)
        self.skin_checked = False
        self.cards: list[ChannelPrep] = []
        self.contacts: tuple | None = None
        self.refusals: list[str] = []
        self._event = None
        self._busy = False
        self._rx_id = None
        self.pin_view = None
        self.start_refusals: list[str] = []
        self.starting = False

    # ------------------------------------------------------------------ life cycle
    def on_pre_enter(self, *a):
        rx = self.app.svc.rx
        # Cards are remade only when the channels' labels change (a new program), not on
        # every visit: made anew they leave native memory behind; id(rx) could also be
        # reused by a later program and keep stale labels.
        labels = tuple(c.label for c in rx.channels) if rx is not None else None
        if rx is not None and self._rx_id != labels:
            self._rx_id = labels
            self.channels_box.clear_widgets()
            self.cards = [ChannelPrep(i, c.label) for i, c in enumerate(rx.channels)]
            for c in self.cards:
                self.channels_box.add_widget(c)
        self.skin_checked = False
        self.contacts = None
        self.start_refusals = []
        for c in self.cards:
            c.show_contact(None)
        super().on_pre_enter(*a)
        self.poll_now()
        self._event = Clock.schedule_interval(lambda _dt: self.poll_now(), CONTACT_POLL_S)

    def on_leave(self, *a):
        if self._event is not None:
            self._event.cancel()
            self._event = None

    def poll_now(self):
        """Ask the engine for contact and refusals on the link's worker (never blocks the UI)."""
        link = self.app.link
        if link is None or self._busy:
            return
        self._busy = True

        def polled(contacts, refusals):
            self._busy = False
            self._polled(contacts, refusals)
        link.check_contact(polled, caregiver_unlocked=self.app.svc.caregiver_unlocked)

    def _polled(self, contacts, refusals):
        self.contacts = contacts
        self.refusals = refusals
        self.refresh()

    # ------------------------------------------------------------------ actions
    def toggle_skin(self):
        self.skin_checked = not self.skin_checked
        self.refresh()

    def ask_pin(self):
        if self.app.svc.caregiver_unlocked:
            return
        # The whole window (over the trainer's panel too): the words and Cancel on the left,
        # the pad on the right, so no key is ever under another button.
        view = ModalView(size_hint=(None, None), size=PIN_VIEW_SIZE, auto_dismiss=False,
                         background_color=(0, 0, 0, 0.85))
        box = Card(orientation="horizontal", bg=Theme.card, spacing=16)
        left = BoxLayout(orientation="vertical", spacing=12)
        msg = Text(_("Caregiver: enter your PIN"), size=Theme.font_large - 4, bold=True, valign="top")
        problem = ProblemText("", size=Theme.font_small, halign="center")
        cancel = BigButton(_("Cancel"), bg=Theme.card_hi, size_hint_y=None, height=BOTTOM_H)
        for w in (msg, problem, cancel):
            left.add_widget(w)
        box.add_widget(left)

        def on_pin(pin):
            if self.app.svc.verify_pin("caregiver", pin):
                self.app.svc.caregiver_unlocked = True
                view.dismiss()
                self.pin_view = None
                self.poll_now()
                self.refresh()
            else:
                locked_s = self.app.svc.pin_lockout_s("caregiver")
                problem.show_problem(f_("Too many wrong PINs. Try again in {minutes} min.",
                                        minutes=max(1, round(locked_s / 60)))
                                     if locked_s > 0 else _("Wrong PIN. Try again."))

        pad = PinPad(on_pin, ok_text=_("OK"), clear_text=_("Clear"), size_hint_x=None, width=PIN_PAD_W)
        box.add_widget(pad)
        cancel.bind(on_release=lambda *_: (view.dismiss(), setattr(self, "pin_view", None)))
        view.add_widget(box)
        view.pad = pad
        view.problem = problem
        view.cancel = cancel
        self.pin_view = view
        view.open()

    def blockers(self) -> list[str]:
        out = []
        if self.contacts is None:
            out.append(_("Checking the electrodes ..."))
        elif not all(self.contacts):
            out.append(_("No contact: press the pad firmly onto the skin."))
        if not self.skin_checked:
            out.append(_("Check the skin first."))
        rx = self.app.svc.rx
        if rx is not None and rx.supervised and not self.app.svc.caregiver_unlocked:
            out.append(_("A caregiver must unlock this session."))
        return out

    def do_begin(self):
        if self.blockers() or self.starting:
            self.refresh()
            return
        self.starting = True
        self.refresh()

        def result(reasons):
            self.starting = False
            self.start_refusals = reasons
            self.refresh()
        self.app.start_session(result)

    def refresh(self):
        super().refresh()
        rx = self.app.svc.rx
        for i, c in enumerate(self.cards):
            c.refresh()
            if self.contacts is not None and i < len(self.contacts):
                c.show_contact(bool(self.contacts[i]))
        self.skin.text = _("Skin checked: no wounds, rash or redness") if self.skin_checked else \
            _("Touch when you have checked the skin")
        self.skin.bg = Theme.go if self.skin_checked else Theme.primary
        supervised = rx is not None and rx.supervised
        if supervised and self.unlock.parent is None:
            self.bottom.add_widget(self.unlock, index=1)
        elif not supervised and self.unlock.parent is not None:
            self.bottom.remove_widget(self.unlock)
        self.unlock.text = _("Unlocked by caregiver") if self.app.svc.caregiver_unlocked else _("Caregiver PIN")
        self.unlock.bg = Theme.go if self.app.svc.caregiver_unlocked else Theme.primary
        self.begin.text = _("Begin")
        blockers = self.blockers()
        self.begin.disabled = bool(blockers or self.refusals or self.starting)
        reasons = self.start_refusals or blockers or list(self.refusals)
        shown = []
        for r in reasons:
            t = refusal_text(r, self.app.svc)
            if t not in shown:
                shown.append(t)
        self.why.text = "  ".join(shown[:2])
