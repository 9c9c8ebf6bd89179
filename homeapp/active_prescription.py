"""The device's active prescription as the touchscreen holds it: loaded and checked on
start, imported from a USB stick, replaced by the clinic's sync, or the DEMO program on
the simulated board.

Every install goes through homeapp/prescriptions.py, the one path a prescription takes
onto the device (validated, verified against the trust store, installed atomically and
never mid-session, logged). This module adds what a screen needs around it: the loaded
prescription and whether it is the DEMO, why none could be loaded, and the Home notice
of a program the clinic sent."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Callable

from homeapp import prescriptions
from homeapp.settings import DeviceSettings

#: The preset the DEMO program is made from.
DEMO_PRESET = "quadriceps-after-knee-surgery"


class ActivePrescription:
    """`rx` (None: none loaded), `demo` (it is the device's DEMO program), `problem` (why
    the file on the device could not be loaded). `trust`: the device's trust store;
    `store`: the log every install goes into; `simulated`: an unsigned prescription may
    be imported, and the DEMO offered."""

    def __init__(self, data_dir: Path, *, trust: Any, store: Any, simulated: bool,
                 settings: DeviceSettings, today: Callable[[], dt.date] = dt.date.today) -> None:
        self.data_dir = Path(data_dir)
        self.trust = trust
        self.store = store
        self.simulated = simulated
        self.settings = settings
        self.today = today
        self.rx: Any = None
        self.demo = False
        self.problem: str | None = None
        self.sha256: str | None = None

    @property
    def path(self) -> Path:
        return prescriptions.active_path(self.data_dir)

    def load(self) -> None:
        """Read the active prescription again (checked as of today, against the trust
        store as it is now)."""
        self.sha256 = prescriptions.active_sha256(self.data_dir)
        self.rx, self.demo, self.problem = None, False, None
        if not self.path.exists():
            return
        rx, problems, _sig = self.check_file(self.path)
        if rx is None:
            self.problem = "\n".join(problems)
            return
        self.rx = rx
        self.demo = bool(self.settings.get("rx_demo")) and self.simulated

    def check_file(self, path: str | Path) -> tuple[Any | None, list[str], str | None]:
        """(prescription or None, every problem, signature problem: None when a trusted
        key's signature verifies) for a file to import."""
        checked = prescriptions.check(path, trust=self.trust, today=self.today())
        if checked.rx is None:
            return None, "\n".join(checked.problems).splitlines(), None
        return checked.rx, [], checked.signature_problem

    def signature_problem(self, rx: Any) -> str | None:
        """Fails closed: anything but a verified signature is a problem to show."""
        return prescriptions.signature_problem(rx, self.trust)

    def import_file(self, path: str | Path) -> tuple[bool, list[str]]:
        """Validate, verify and make `path` the device's prescription: (done, the reasons
        it was refused or the warnings it was taken with). On a real board an unsigned or
        untrusted prescription is refused; on the simulated board it is taken with the
        signature problem shown."""
        store_path = getattr(self.store, "path", None)
        try:
            done = prescriptions.install(
                path, self.data_dir, trust=self.trust, store=self.store, origin="usb",
                allow_unsigned=self.simulated, today=self.today(),
                session_lock=prescriptions.session_lock_path(store_path) if store_path else None)
        except prescriptions.SessionRunning as e:
            return False, [str(e)]
        if not done.ok:
            return False, done.reasons
        self.settings.update(rx_demo=False, language=self.settings.language)
        self.load()
        return True, done.warnings

    def load_demo(self, lang: str) -> bool:
        """A preset prescription, clearly marked DEMO, on the simulated board only."""
        if not self.simulated:
            return False
        data = demo_prescription_dict(self.today(), lang=lang)
        prescriptions.write_atomically(self.path, json.dumps(data, indent=2).encode())
        self.settings.update(rx_demo=True, language=self.settings.language)
        self.load()
        return self.rx is not None

    def relabel_demo(self, lang: str) -> None:
        """The loaded DEMO rewritten in `lang`, its dates kept (the device wrote its
        labels, so they follow the patient's language)."""
        if not (self.demo and self.rx is not None):
            return
        data = demo_prescription_dict(self.rx.issued, lang=lang)
        prescriptions.write_atomically(self.path, json.dumps(data, indent=2).encode())
        self.load()

    def reload_if_changed(self, *, session_busy: bool) -> bool:
        """After a sync installed a prescription: read it (never while a session is busy)."""
        sha = prescriptions.active_sha256(self.data_dir)
        if sha == self.sha256 or session_busy:
            return False
        self.load()
        return True

    def clinic_arrival(self, sessions: list[dict]) -> dict | None:
        """The note of the prescription the clinic sent, while no session in `sessions`
        has used it yet (None otherwise)."""
        note = prescriptions.arrival(self.data_dir)
        if not note or note.get("origin") != "clinic" or self.rx is None or note.get("id") != self.rx.id:
            return None
        if any(s.get("prescription_id") == self.rx.id for s in sessions):
            return None
        return note


def demo_prescription_dict(today: dt.date, lang: str = "en") -> dict:
    """The demo: a preset from schedules.presets on both thighs, dated from today, with
    a schedule loose enough to show it several times a day. Marked DEMO everywhere. The
    device writes it, so its labels are in the patient's language `lang`."""
    from schedules.presets import LANGUAGES, label_text
    lang = lang if lang in LANGUAGES else "en"
    try:
        from schedules.presets import make_prescription
        data = make_prescription(DEMO_PRESET, patient_id="DEMO", clinician_id="DEMO", issued=today,
                                 expires=today + dt.timedelta(days=90), rx_id="DEMO-" + DEMO_PRESET,
                                 lang=lang)
        cap = data["channels"][0]["max_ma"]
        data["channels"] = [{"label": label_text("left quadriceps", lang), "max_ma": cap},
                            {"label": label_text("right quadriceps", lang), "max_ma": cap}]
    except Exception:  # presets missing: a small built-in program
        data = {
            "format": "homeapp.prescription/1", "id": "DEMO-quadriceps",
            "patient_id": "DEMO", "clinician_id": "DEMO",
            "issued": today.isoformat(), "expires": (today + dt.timedelta(days=90)).isoformat(),
            "sessions_per_week": 5, "supervision": "none",
            "channels": [{"label": label_text("left quadriceps", lang), "max_ma": 40},
                         {"label": label_text("right quadriceps", lang), "max_ma": 40}],
            "blocks": [
                {"label": label_text("warm-up", lang), "minutes": 1, "hz": 8, "pulse_us": 250, "on_s": 5, "off_s": 5,
                 "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "synchronous"},
                {"label": label_text("strength", lang), "minutes": 3, "hz": 50, "pulse_us": 300, "on_s": 10,
                 "off_s": 20, "ramp_up_s": 2, "ramp_down_s": 1, "pattern": "synchronous"}]}
    data["max_sessions_per_day"] = 3
    data["min_hours_between"] = 0
    data.pop("signature", None)
    return data
