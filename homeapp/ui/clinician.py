"""Clinician mode (PIN, stored hashed): import a prescription from a USB stick or a file
(validated, signature verified), view the log, export it."""
from __future__ import annotations

import datetime as dt

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.scrollview import ScrollView

from .caregiver import PinScreen
from .i18n import N_, _, f_, language, ma_text
from .widgets import BigButton, Card, PinPad, Text, Theme


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


def _num(x: float) -> str:
    """A prescribed value as written (no trailing .0), with this language's decimal mark."""
    text = f"{x:g}"
    return text.replace(".", ",") if language() == "sv" else text


def prescription_summary(rx, *, signature_problem: str | None,
                         key_labels: dict[str, str]) -> tuple[list[str], list[str]]:
    """What a clinician checks before installing `rx`, as two lists of lines: who signed
    it, who it is for, the dates and the schedule; then each channel's cap and each block."""
    lines = [f_("Prescription {id}", id=rx.id)]
    if signature_problem is None:
        key = (rx.signature or {}).get("key_id", "")
        lines.append(f_("Signed by {label} (key {id}), verified", label=key_labels.get(key, "?"),
                        id=key[:9] + "…"))
    else:
        lines.append(f_("Not verified: {why}", why=signature_text(signature_problem)))
    lines.append(f_("Patient {patient}, clinician {clinician}", patient=rx.patient_id,
                    clinician=rx.clinician_id))
    if rx.valid_from is not None and rx.valid_from != rx.issued:
        lines.append(f_("Valid from {start} to {expires} (issued {issued})", start=rx.starts_on.isoformat(),
                        expires=rx.expires.isoformat(), issued=rx.issued.isoformat()))
    else:
        lines.append(f_("Valid from {start} to {expires}", start=rx.starts_on.isoformat(),
                        expires=rx.expires.isoformat()))
    lines.append(f_("{per_week} sessions a week, at most {per_day} a day", per_week=rx.sessions_per_week,
                    per_day=rx.max_sessions_per_day))
    if rx.min_hours_between > 0:
        lines.append(f_("At least {hours} hours between sessions", hours=_num(rx.min_hours_between)))
    if rx.supervised:
        lines.append(_("A caregiver must unlock each session."))
    program: list[str] = []
    for i, ch in enumerate(rx.channels):
        program.append(f_("Channel {n}: {label}, at most {max_ma} mA", n=i + 1, label=ch.label,
                        max_ma=_num(ch.max_ma)))
    for i, b in enumerate(rx.blocks):
        program.append(f_("Block {n}: {label}, {minutes} min, {hz} Hz, {pulse_us} µs, {on_s} s on, "
                        "{off_s} s rest", n=i + 1, label=b.label, minutes=_num(b.minutes), hz=_num(b.hz),
                        pulse_us=_num(b.pulse_us), on_s=_num(b.on_s), off_s=_num(b.off_s)))
    return lines, program


class CodePad(PinPad):
    """The digit pad for a pairing code: digits shown (a code is not a secret to hide
    from the clinician typing it), grouped 1234-5678 as the clinic prints it."""

    def __init__(self, on_code, *, prompt: str, **kw):
        super().__init__(on_code, **kw)
        self.prompt = prompt
        # four columns, three rows: fits beside the device's details even under the
        # simulated board's trainer panel, every key still 60 px or more
        grid = self.buttons["0"].parent
        grid.clear_widgets()
        grid.cols = 4
        for key in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "clear", "ok"):
            grid.add_widget(self.buttons[key])
        for key in ("clear", "ok"):
            self.buttons[key].font_size = Theme.font_small
        self.display.font_size = Theme.font_body
        self.display.height = 40
        self.press("clear")

    def press(self, key: str) -> None:
        super().press(key)
        code = self._pin
        self.display.text = code[:4] + ("-" + code[4:] if len(code) > 4 else "") if code else self.prompt
        self.display.color = Theme.text if code else Theme.muted


#: Height of a row in the list of files: a whole touch target, never half of one.
FILE_ROW_H = 64


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
        self.tab_clinic = BigButton("", bg=Theme.card_hi)
        self.tab_clinic.bind(on_release=lambda *_: self.show_tab("clinic"))
        tabs.add_widget(self.tab_rx)
        tabs.add_widget(self.tab_log)
        tabs.add_widget(self.tab_clinic)
        self.panel.add_widget(tabs)
        self.tabs = tabs
        self.content = BoxLayout(orientation="vertical", spacing=8)
        self.panel.add_widget(self.content)
        # grows to its text (wrapped), beside or under what it is about, never over it
        self.message = Text("", size=Theme.font_small, bold=True, size_hint_y=None, fit=True)
        self.tab = "rx"
        self.preview = None               # the file shown for checking before it is installed
        self.extra_dirs: list[str] = []   # tests and demos add folders to look in
        self._built: dict[str, tuple] = {}   # tab -> (what it shows, its widgets)

    def lock(self):
        self.preview = None
        super().lock()

    def show_tab(self, tab):
        if tab != "log":
            self._drop_log()
        self.tab = tab
        self.preview = None
        self.pair_result = None
        self.message.text = ""
        self.refresh()

    def _drop_log(self):
        # The log's text is one texture as tall as the log (7 MB for 100 sessions, twice
        # that resident with software GL): not kept while nobody reads it.
        if self._built.pop("log", None) is not None and self.tab == "log":
            self.content.clear_widgets()

    def on_leave(self, *args):
        self._drop_log()

    def refresh_panel(self):
        self.tab_rx.text = _("Prescription")
        self.tab_log.text = _("Log")
        self.tab_rx.bg = Theme.primary if self.tab == "rx" else Theme.card_hi
        self.tab_log.bg = Theme.primary if self.tab == "log" else Theme.card_hi
        self.tab_clinic.text = _("Clinic link")
        self.tab_clinic.bg = Theme.primary if self.tab == "clinic" else Theme.card_hi
        self.content.clear_widgets()
        # a file being checked takes the whole panel: the tabs come back with the list
        previewing = self.tab == "rx" and self.preview is not None
        if previewing and self.tabs.parent is not None:
            self.panel.remove_widget(self.tabs)
        elif not previewing and self.tabs.parent is None:
            self.panel.add_widget(self.tabs, index=len(self.panel.children))
        if self.message.parent is not None:      # shared by the tabs, placed by each
            self.message.parent.remove_widget(self.message)
        # A tab is rebuilt only when what it shows changed; otherwise its widgets are shown
        # again: widgets made anew on every visit leave native memory behind.
        key = self._content_key()
        built = self._built.get(self.tab)
        if key is not None and built is not None and built[0] == key:
            for w in built[1]:
                self.content.add_widget(w)
            if self.tab == "rx" and self.preview is None and self.message.parent is None:
                self._rx_message_slot.add_widget(self.message)   # it sits inside the tab
            return
        if self.tab == "rx":
            self.build_rx()
        elif self.tab == "clinic":
            self.build_clinic()
        else:
            self.build_log()
        if key is not None:
            self._built[self.tab] = (key, list(reversed(self.content.children)))

    def _content_key(self):
        """Everything the current tab shows, to tell when it must be rebuilt (None: the
        clinic link tab, whose sync status changes on its own, is always rebuilt)."""
        svc = self.app.svc
        if self.tab == "clinic":
            return None
        if self.tab == "rx":
            rx = svc.rx
            shown = None if rx is None else (rx.id, rx.patient_id, rx.issued, rx.expires,
                                             svc.signature_problem(rx))
            return (language(), shown, self.preview, tuple(svc.find_import_files(self.extra_dirs)),
                    tuple(svc.find_key_files(self.extra_dirs)), tuple(sorted(svc.trusted_keys().items())))
        return (language(), tuple(self._log_lines()), tuple(svc.export_dirs()[:3]))

    def build_clinic(self):
        """The device's key id (to compare with the clinic's), the clinic, the last sync,
        and pairing by typing the clinic's one-time code."""
        from .home import sync_text
        status = self.app.svc.clinic_status() or {}
        row = BoxLayout(spacing=10)
        left = BoxLayout(orientation="vertical", spacing=6)
        info = Card(orientation="vertical", spacing=0, padding=(12, 4), size_hint_y=None, height=196)
        small = dict(size=Theme.font_small, size_hint_y=None, height=26, shorten=True, shorten_from="right")
        info.add_widget(Text(_("This device's key:"), **small))
        kid = status.get("device_key_id") or "…"
        # two lines of four groups, large enough to read aloud and compare
        for half in (kid[:19], kid[20:]) if len(kid) > 20 else (kid,):
            info.add_widget(Text(half, size=Theme.font_body, bold=True, font_name="RobotoMono-Regular",
                                 size_hint_y=None, height=30))
        url = status.get("url")
        info.add_widget(Text(f_("Clinic: {url}", url=url) if url else _("No clinic address is configured (clinic.url)."),
                             **small))
        info.add_widget(Text(f_("Paired for patient {patient}", patient=status.get("patient_id") or "?")
                             if status.get("paired") else _("Not paired with a clinic."),
                             color=Theme.ok if status.get("paired") else Theme.warn, **small))
        info.add_widget(Text(sync_text(status), size=Theme.font_small, size_hint_y=None, height=50))
        left.add_widget(info)
        left.add_widget(self.message)
        result = getattr(self, "pair_result", None)      # said again in the language now shown
        if result == "paired":
            self.message.color = Theme.ok
            self.message.text = _("Paired. Compare the key with the one the clinic shows.")
        elif result is not None:
            self.message.color = Theme.bad
            self.message.text = f_("Pairing failed: {why}", why=result)
        row.add_widget(left)
        self.code_pad = CodePad(self.do_pair, prompt=_("Code from the clinic"), ok_text=_("Pair"),
                                clear_text=_("Clear"), size_hint_x=None, width=380)
        row.add_widget(self.code_pad)
        self.content.add_widget(row)

    def do_pair(self, code):
        from kivy.clock import Clock
        if len(code) != 8:
            self.message.color = Theme.bad
            self.message.text = _("The code has 8 digits.")
            return
        self.message.color = Theme.text
        self.message.text = _("Pairing…")

        def done(reason):
            def show(_dt):
                self.pair_result = "paired" if reason is None else reason
                self.refresh()
            Clock.schedule_once(show, 0)
        self.app.svc.clinic.pair(code, done)

    def build_rx(self):
        """The prescription on the device and the message on the left; on the right the
        files to import, each a full row (the message never takes the list's room). A
        touched file is shown for checking before it is installed."""
        if self.preview is not None:
            self.build_preview(self.preview)
            return
        svc = self.app.svc
        rx = svc.rx
        row = BoxLayout(spacing=10)
        left = BoxLayout(orientation="vertical", spacing=6, size_hint_x=None, width=300)
        info = Card(orientation="vertical", spacing=2, padding=(12, 6), size_hint_y=None)
        lines = []
        if rx is None:
            lines.append(Text(_("No prescription on this device."), size=Theme.font_body, bold=True,
                              fit=True, size_hint_y=None))
        else:
            sig = svc.signature_problem(rx)
            lines.append(Text(rx.id, size=Theme.font_body, bold=True, fit=True, size_hint_y=None))
            lines.append(Text(f_("Patient {patient}, valid {issued} to {expires}", patient=rx.patient_id,
                                 issued=rx.starts_on.isoformat(), expires=rx.expires.isoformat()),
                              size=Theme.font_small, fit=True, size_hint_y=None))
            lines.append(Text(_("Signature verified") if sig is None
                              else f_("Not verified: {why}", why=signature_text(sig)),
                              size=Theme.font_small, color=Theme.ok if sig is None else Theme.warn,
                              fit=True, size_hint_y=None))
        for t in lines:
            info.add_widget(t)
            t.bind(height=lambda *_a, c=info, ls=lines: setattr(
                c, "height", sum(x.height for x in ls) + 2 * (len(ls) - 1) + 12))
        left.add_widget(info)
        said = ScrollView(do_scroll_x=False, bar_width=8)   # a long refusal scrolls in its place
        said.add_widget(self.message)
        self._rx_message_slot = said
        left.add_widget(said)
        row.add_widget(left)

        right = BoxLayout(orientation="vertical", spacing=6)
        right.add_widget(Text(_("Import from a USB stick (touch a file):"), size=Theme.font_small,
                              size_hint_y=None, height=28))
        files = svc.find_import_files(self.extra_dirs)
        sv = ScrollView(do_scroll_x=False, bar_width=10)
        box = BoxLayout(orientation="vertical", spacing=6, size_hint_y=None)
        box.bind(minimum_height=box.setter("height"))
        self.file_buttons = []
        self.file_list = sv
        for p in files:
            b = BigButton(str(p), bg=Theme.card_hi, size=Theme.font_small, size_hint_y=None, height=FILE_ROW_H)
            b.halign = "left"
            b.bind(on_release=lambda _b, p=p: self.show_preview(p))
            self.file_buttons.append(b)
            box.add_widget(b)
        for p in svc.find_key_files(self.extra_dirs):
            b = BigButton(f_("Trust the clinician key {file}", file=p.name), bg=Theme.card_hi,
                          size=Theme.font_small, size_hint_y=None, height=FILE_ROW_H)
            b.bind(on_release=lambda _b, p=p: self.do_trust(p))
            self.file_buttons.append(b)
            box.add_widget(b)
        if not files:
            box.add_widget(Text(_("No prescription file found. Insert the USB stick."), size=Theme.font_small,
                                color=Theme.muted, size_hint_y=None, height=FILE_ROW_H))
        for kid, label in svc.trusted_keys().items():
            b = BigButton(f_("Stop trusting {label} ({id})", label=label, id=kid[:9] + "…"), bg=Theme.card_hi,
                          size=Theme.font_small, size_hint_y=None, height=FILE_ROW_H)
            b.bind(on_release=lambda _b, kid=kid, label=label: self.ask_untrust(_b, kid, label))
            self.file_buttons.append(b)
            box.add_widget(b)
        sv.add_widget(box)
        right.add_widget(sv)
        row.add_widget(right)
        self.content.add_widget(row)

    def show_preview(self, path):
        """A file touched in the list: its summary, to check before installing it."""
        self.preview = path
        self.message.text = ""
        self.refresh()

    def build_preview(self, path):
        svc = self.app.svc
        rx, problems, sig = svc.check_import(path)
        self.content.add_widget(Text(f_("Check before installing: {file}", file=path.name),
                                     size=Theme.font_body, bold=True, size_hint_y=None, height=34,
                                     shorten=True, shorten_from="left"))
        if rx is None:
            about, program = [_("Refused:")] + [f"- {p}" for p in problems[:8]], []
        else:
            about, program = prescription_summary(rx, signature_problem=sig, key_labels=svc.trusted_keys())
        self.preview_lines = about + program
        # two columns, each scrolling on its own: the whole summary is seen at 800 x 480
        columns = BoxLayout(spacing=12)
        self.preview_texts = []
        for lines in (about, program) if program else (about,):
            sv = ScrollView(do_scroll_x=False, bar_width=10)
            t = Text("\n".join(lines), size=Theme.font_small, fit=True, valign="top", size_hint_y=None,
                     color=Theme.text if rx is not None else Theme.bad)
            sv.add_widget(t)
            columns.add_widget(sv)
            self.preview_texts.append(t)
        self.content.add_widget(columns)
        buttons = BoxLayout(size_hint_y=None, height=64, spacing=8)
        self.cancel_button = BigButton(_("Cancel") if rx is not None else _("Back"), bg=Theme.card_hi,
                                       size=Theme.font_body)
        self.cancel_button.bind(on_release=lambda *_: self.close_preview())
        buttons.add_widget(self.cancel_button)
        self.install_button = None
        if rx is not None:
            self.install_button = BigButton(_("Install this prescription"), bg=Theme.go, size=Theme.font_body)
            self.install_button.bind(on_release=lambda *_: self.do_import(path))
            buttons.add_widget(self.install_button)
        self.content.add_widget(buttons)

    def close_preview(self):
        self.preview = None
        self.message.text = ""
        self.refresh()

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
        self.preview = None
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

    def _log_lines(self) -> list[str]:
        svc = self.app.svc
        sessions = svc.sessions(full=True)
        lines = []
        for s in reversed(sessions[-100:]):
            try:
                when = dt.datetime.fromisoformat(s["started_at"]).strftime("%Y-%m-%d %H:%M")
            except (KeyError, TypeError, ValueError):
                when = "?"
            chans = s.get("channels", [])
            peaks = "/".join(ma_text(c.get("peak_ma", 0)) for c in chans)
            contr = "/".join(str(c.get("contractions", 0)) for c in chans)
            rep = ""
            d = s.get("report") or {}
            if d:
                rep = "  " + f_("pain {pain} effort {effort}", pain=d.get("pain"), effort=d.get("effort"))
            status = STATUS_WORDS.get(s.get("status", ""), s.get("status", "?"))
            lines.append(f_("{when}  {status}  {done} of {planned}  peak {peaks} mA{report}", when=when,
                            status=_(status), done=contr, planned=s.get("planned_contractions", "?"),
                            peaks=peaks, report=rep))
        return lines

    def build_log(self):
        svc = self.app.svc
        lines = self._log_lines()
        sv = ScrollView(do_scroll_x=False, bar_width=10)
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
