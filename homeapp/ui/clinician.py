"""Clinician mode (PIN, stored hashed): import a prescription from a USB stick or a file
(validated, signature verified), view the log, export it."""
from __future__ import annotations

import datetime as dt

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.scrollview import ScrollView

from .caregiver import PinScreen
from .i18n import N_, _, f_
from .widgets import BigButton, Card, Text, Theme


#: The log's session status, as a clinician reads it on screen.
STATUS_WORDS = {"completed": N_("completed"), "stopped": N_("stopped"), "aborted": N_("aborted"),
                "interrupted": N_("interrupted")}


def signature_text(reason: str) -> str:
    """schedules.signing's reason, in the screen's language where we know it."""
    if reason == "unsigned":
        return _("unsigned")
    if reason.startswith("signed by an unknown key"):
        return _("signed by a key this device does not trust")
    if reason.startswith("signed by a removed key"):
        return _("signed by a key that was removed from this device")
    if reason.startswith("altered after signing"):
        return _("changed after it was signed")
    return reason


class ClinicianScreen(PinScreen):
    role = "clinician"
    title_msg = N_("Clinic")
    prompt_msg = N_("Clinician: enter your PIN")

    def build_panel(self):
        tabs = BoxLayout(size_hint_y=None, height=64, spacing=8)
        self.tab_rx = BigButton("", bg=Theme.primary)
        self.tab_rx.bind(on_release=lambda *_: self.show_tab("rx"))
        self.tab_log = BigButton("", bg=Theme.card_hi)
        self.tab_log.bind(on_release=lambda *_: self.show_tab("log"))
        tabs.add_widget(self.tab_rx)
        tabs.add_widget(self.tab_log)
        self.panel.add_widget(tabs)
        self.content = BoxLayout(orientation="vertical", spacing=8)
        self.panel.add_widget(self.content)
        self.message = Text("", size=Theme.font_small, bold=True, size_hint_y=None, height=56)
        self.tab = "rx"
        self.extra_dirs: list[str] = []   # tests and demos add folders to look in

    def show_tab(self, tab):
        self.tab = tab
        self.message.text = ""
        self.refresh()

    def refresh_panel(self):
        self.tab_rx.text = _("Prescription")
        self.tab_log.text = _("Log")
        self.tab_rx.bg = Theme.primary if self.tab == "rx" else Theme.card_hi
        self.tab_log.bg = Theme.primary if self.tab == "log" else Theme.card_hi
        self.content.clear_widgets()
        if self.tab == "rx":
            self.build_rx()
        else:
            self.build_log()

    def build_rx(self):
        svc = self.app.svc
        rx = svc.rx
        info = Card(orientation="vertical", size_hint_y=None, height=104, spacing=0, padding=(12, 4))
        if rx is None:
            info.add_widget(Text(_("No prescription on this device."), size=Theme.font_body, bold=True))
        else:
            sig = svc.signature_problem(rx)
            info.add_widget(Text(rx.id, size=Theme.font_body, bold=True, shorten=True, shorten_from="right"))
            info.add_widget(Text(f_("Patient {patient}, valid {issued} to {expires}", patient=rx.patient_id,
                                    issued=rx.issued.isoformat(), expires=rx.expires.isoformat()),
                                 size=Theme.font_small, shorten=True, shorten_from="right"))
            info.add_widget(Text(_("Signature verified") if sig is None
                                 else f_("Not verified: {why}", why=signature_text(sig)),
                                 size=Theme.font_small, color=Theme.ok if sig is None else Theme.warn,
                                 shorten=True, shorten_from="right"))
        self.content.add_widget(info)
        self.content.add_widget(Text(_("Import from a USB stick (touch a file):"), size=Theme.font_small,
                                     size_hint_y=None, height=28))
        files = svc.find_import_files(self.extra_dirs)
        sv = ScrollView(do_scroll_x=False, bar_width=10)
        box = BoxLayout(orientation="vertical", spacing=6, size_hint_y=None)
        box.bind(minimum_height=box.setter("height"))
        self.file_buttons = []
        for p in files:
            b = BigButton(str(p), bg=Theme.card_hi, size=Theme.font_small, size_hint_y=None, height=60)
            b.halign = "left"
            b.bind(on_release=lambda _b, p=p: self.do_import(p))
            self.file_buttons.append(b)
            box.add_widget(b)
        for p in svc.find_key_files(self.extra_dirs):
            b = BigButton(f_("Trust the clinician key {file}", file=p.name), bg=Theme.card_hi,
                          size=Theme.font_small, size_hint_y=None, height=60)
            b.bind(on_release=lambda _b, p=p: self.do_trust(p))
            self.file_buttons.append(b)
            box.add_widget(b)
        if not files:
            box.add_widget(Text(_("No prescription file found. Insert the USB stick."), size=Theme.font_small,
                                color=Theme.muted, size_hint_y=None, height=40))
        for kid, label in svc.trusted_keys().items():
            b = BigButton(f_("Stop trusting {label} ({id})", label=label, id=kid[:9] + "…"), bg=Theme.card_hi,
                          size=Theme.font_small, size_hint_y=None, height=60)
            b.bind(on_release=lambda _b, kid=kid, label=label: self.ask_untrust(_b, kid, label))
            self.file_buttons.append(b)
            box.add_widget(b)
        sv.add_widget(box)
        self.content.add_widget(sv)
        self.content.add_widget(self.message)

    def do_trust(self, path):
        try:
            key_id = self.app.svc.trust_key(path)
        except Exception as e:  # a bad key file or a clashing label: say so, never crash
            self.message.color = Theme.bad
            self.message.text = _("Refused:") + " " + str(e)
            return
        self.app.screens["home"].refresh()
        self.refresh()
        self.message.color = Theme.ok
        self.message.text = f_("Key {id} is trusted now.", id=key_id)

    def ask_untrust(self, button, key_id, label):
        """Removing a key refuses every prescription it signed: a second touch confirms."""
        if getattr(button, "confirming", False):
            self.do_untrust(key_id)
            return
        button.confirming = True
        button.bg = Theme.bad
        button.text = f_("Touch again to stop trusting {label}", label=label)
        self.message.color = Theme.warn
        self.message.text = _("Prescriptions signed by this key will be refused from the next session.")

    def do_untrust(self, key_id):
        try:
            label = self.app.svc.untrust_key(key_id)
        except Exception as e:  # a store that cannot be written, a key already gone: say so
            self.message.color = Theme.bad
            self.message.text = _("Refused:") + " " + str(e)
            return
        self.app.screens["home"].refresh()
        self.refresh()
        self.message.color = Theme.ok
        self.message.text = f_("Key {id} ({label}) is no longer trusted.", id=key_id[:9] + "…", label=label)

    def do_import(self, path):
        ok, problems = self.app.svc.import_prescription(path)
        if ok:
            self.message.color = Theme.ok if not problems else Theme.warn
            rx = self.app.svc.rx
            self.message.text = f_("Imported {id}.", id=rx.id) + (
                "  " + f_("Not verified: {why}", why=signature_text(problems[0])) if problems else "")
        else:
            self.message.color = Theme.bad
            self.message.text = _("Refused:") + " " + "; ".join(problems[:3])
        self.app.screens["home"].refresh()
        msg = (self.message.text, self.message.color)
        self.refresh()
        self.message.text, self.message.color = msg

    def build_log(self):
        svc = self.app.svc
        sessions = svc.sessions(full=True)
        sv = ScrollView(do_scroll_x=False, bar_width=10)
        lines = []
        for s in reversed(sessions[-100:]):
            try:
                when = dt.datetime.fromisoformat(s["started_at"]).strftime("%Y-%m-%d %H:%M")
            except (KeyError, TypeError, ValueError):
                when = "?"
            chans = s.get("channels", [])
            peaks = "/".join(f"{c.get('peak_ma', 0):g}" for c in chans)
            contr = "/".join(str(c.get("contractions", 0)) for c in chans)
            rep = ""
            d = s.get("report") or {}
            if d:
                rep = "  " + f_("pain {pain} effort {effort}", pain=d.get("pain"), effort=d.get("effort"))
            status = STATUS_WORDS.get(s.get("status", ""), s.get("status", "?"))
            lines.append(f_("{when}  {status}  {done} of {planned}  peak {peaks} mA{report}", when=when,
                            status=_(status), done=contr, planned=s.get("planned_contractions", "?"),
                            peaks=peaks, report=rep))
        log_text = Text("\n".join(lines) if lines else _("The log is empty."), size=Theme.font_small - 2,
                        fit=True, valign="top", size_hint_y=None, font_name="RobotoMono-Regular")
        sv.add_widget(log_text)
        self.content.add_widget(sv)
        row = BoxLayout(size_hint_y=None, height=64, spacing=8)
        for d in svc.export_dirs()[:3]:
            b = BigButton(f_("Export to {dir}", dir=str(d)), bg=Theme.primary, size=Theme.font_small)
            b.bind(on_release=lambda _b, d=d: self.do_export(d))
            row.add_widget(b)
        self.content.add_widget(row)
        self.content.add_widget(self.message)

    def do_export(self, d):
        try:
            path = self.app.svc.export_log(d)
        except OSError as e:
            self.message.color = Theme.bad
            self.message.text = f_("Export failed: {why}", why=e.strerror or str(e))
            return
        self.message.color = Theme.ok
        self.message.text = f_("Exported to {path}", path=str(path))
