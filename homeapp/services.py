"""The services the touchscreen uses, over one opened device: the active prescription,
the session log, PIN access, USB files, the trusted clinician keys, the clinic link and a
session's engine.

Each job lives in a module of its own, outside the UI and usable without Kivy:
homeapp/active_prescription.py (on homeapp/prescriptions.py), homeapp/session_log.py,
homeapp/access.py (on homeapp/pin_lockout.py), homeapp/usb.py, homeapp/clinician_keys.py,
homeapp/settings.py, homeapp/clinic_link.py; the device and each session's engine come
from homeapp/device.py. `Services` composes them behind the method names the screens call
(homeapp/ui/services.py re-exports it), so a screen never holds the store, the board or a
file. Every call is quick; the engine runs its loop in its own thread.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeapp import prescriptions
from homeapp.access import DEMO_PIN, RoleAccess
from homeapp.active_prescription import ActivePrescription
from homeapp.clinician_keys import ClinicianKeys
from homeapp.session_log import Warning_, SessionLog
from homeapp.settings import DeviceSettings
from homeapp.usb import USB_ROOTS, UsbFiles

if TYPE_CHECKING:  # types only: the services reach the device through `device`
    from homeapp.config import Config
    from homeapp.device import Device, TrainerHands
    from homeapp.store import Store
    from schedules.signing import TrustStore

log = logging.getLogger(__name__)

__all__ = ["Services", "Warning_", "DEMO_PIN", "USB_ROOTS"]


class Services:
    """The device's services for the touchscreen. `config` (homeapp.config.Config) and
    `device` (homeapp.device.Device); `today` fixes the date (pictures and tests)."""

    #: Set by the app: called (from a worker thread) when the clinic link has news.
    on_clinic_change = None

    def __init__(self, config: Config | None = None, device: Device | None = None,
                 today: dt.date | None = None) -> None:
        self.config = config
        self.device = device
        self._today = today
        self._unlocked_for: str | None = None   # the prescription's sha256 an unlock was given under
        self.engine = None
        self.clinic = None
        self._closed = False
        self._start_check = None

    # ------------------------------------------------------------------ set-up
    @classmethod
    def open(cls, config_path: str | None = None, *, config: Config | None = None, device: Device | None = None,
             clinic_link: bool = True) -> "Services":
        """The configured device opened (homeapp/device.py, unless `device` is given),
        its prescription loaded and, with `clinic_link`, its sync with the clinic started."""
        from homeapp.config import load_config
        from homeapp.device import open_device
        config = config or load_config(config_path)
        device = device or open_device(config)
        svc = cls(config=config, device=device)
        try:
            svc.load_current_prescription()
            if clinic_link:
                svc.start_clinic_link()
        except BaseException:
            svc.close()
            raise
        return svc

    def close(self) -> None:
        """The clinic link closed, a running session stopped, the device closed (idempotent)."""
        eng, self.engine = self.engine, None
        if self._closed:
            return
        self._closed = True
        if self.clinic is not None:
            try:
                self.clinic.close()
            except Exception:
                log.exception("closing the clinic link")
        if eng is not None:
            try:
                if not eng.state.phase.ended and eng.state.phase.value in ("running", "paused"):
                    eng.stop()
            except Exception:
                log.exception("stopping the engine on close")
        if self.device is not None:
            try:
                self.device.close()
            except Exception:
                log.exception("closing the device")

    # ------------------------------------------------------------------ the parts
    @property
    def _store(self) -> Store | None:
        return self.device.store if self.device is not None else None

    @property
    def _data_path(self) -> Path:
        if self.config is not None:
            return Path(self.config.data_dir)
        return Path.home() / ".local/share/homeapp"

    def _trust(self) -> TrustStore | None:
        trust = self.device.trust if self.device is not None else None
        if trust is None and self.config is not None:
            try:
                from schedules.signing import TrustStore
                trust = TrustStore(self.config.trust_dir)
            except Exception:
                return None
        return trust

    @functools.cached_property
    def settings(self) -> DeviceSettings:
        language = self.config.language if self.config is not None else "en"
        return DeviceSettings(self._data_path, default_language=language or "en")

    @functools.cached_property
    def prescription(self) -> ActivePrescription:
        return ActivePrescription(self._data_path, trust=self._trust(), store=self._store,
                                  simulated=self.simulated, settings=self.settings, today=self.today)

    @functools.cached_property
    def session_log(self) -> SessionLog:
        return SessionLog(self._store, today=self.today)

    @functools.cached_property
    def access(self) -> RoleAccess:
        config = self.config
        hashes = {"caregiver": config.caregiver_pin_hash if config is not None else None,
                  "clinician": config.clinician_pin_hash if config is not None else None}
        return RoleAccess(pin_hashes=hashes, store=self._store, simulated=self.simulated)

    @functools.cached_property
    def usb(self) -> UsbFiles:
        return UsbFiles(self._data_path)

    @functools.cached_property
    def clinician_keys(self) -> ClinicianKeys:
        return ClinicianKeys(self._trust(), store=self._store)

    # ------------------------------------------------------------------ the device
    @property
    def simulated(self) -> bool:
        if self.device is not None:
            return bool(self.device.simulated)
        return self.config is None or self.config.board == "simulated"

    @property
    def trainer_hands(self) -> TrainerHands | None:
        """The trainer's hands on the simulated board (homeapp.device.TrainerHands; None on
        a real board): the trainer's panel presses the e-stop and moves electrodes with them."""
        return self.device.hands if self.device is not None and self.simulated else None

    @property
    def show_trainer_panel(self) -> bool:
        shown = self.config.show_trainer_panel if self.config is not None else True
        return self.trainer_hands is not None and bool(shown)

    @property
    def data_dir(self) -> Path:
        d = self._data_path
        d.mkdir(parents=True, exist_ok=True)
        return d

    def today(self) -> dt.date:
        return self._today or dt.date.today()

    # ------------------------------------------------------------------ UI settings
    def language(self) -> str:
        return self.settings.language

    def save_language(self, lang: str) -> None:
        self.settings.update(language=lang)

    def pads_changed(self) -> None:
        self.settings.update(pads_changed_at_count=len(self.sessions()))

    # ------------------------------------------------------------------ caregiver unlock
    @property
    def caregiver_unlocked(self) -> bool:
        """A caregiver unlocked the next session of the prescription now on the device. An
        unlock holds only for the prescription it was given under: one imported or sent by
        the clinic after it is locked again."""
        return self._unlocked_for is not None and self._unlocked_for == self.prescription.sha256

    @caregiver_unlocked.setter
    def caregiver_unlocked(self, unlocked: bool) -> None:
        self._unlocked_for = (self.prescription.sha256 or "") if unlocked else None

    # ------------------------------------------------------------------ prescription
    @property
    def rx(self):
        return self.prescription.rx

    @rx.setter
    def rx(self, value) -> None:
        self.prescription.rx = value

    @property
    def rx_demo(self) -> bool:
        return self.prescription.demo

    @rx_demo.setter
    def rx_demo(self, value: bool) -> None:
        self.prescription.demo = value

    @property
    def rx_problem(self) -> str | None:
        return self.prescription.problem

    def load_current_prescription(self) -> None:
        self.prescription.load()

    def signature_problem(self, rx) -> str | None:
        return self.prescription.signature_problem(rx)

    def check_import(self, path) -> tuple[Any | None, list[str], str | None]:
        """(prescription or None, problems, signature problem) for a file to import."""
        return self.prescription.check_file(path)

    def import_prescription(self, path) -> tuple[bool, list[str]]:
        """Validate, verify and make `path` the device's prescription (see
        ActivePrescription.import_file): (done, reasons or warnings)."""
        return self.prescription.import_file(path)

    def demo_available(self) -> bool:
        return self.simulated

    def load_demo(self) -> bool:
        return self.prescription.load_demo(self.language())

    def relabel_demo(self) -> None:
        self.prescription.relabel_demo(self.language())

    def reload_if_changed(self) -> bool:
        """After a sync installed a prescription: read it (never while a session is
        prepared or under way: Preparation keeps showing the program its engine holds)."""
        return self.prescription.reload_if_changed(session_busy=self._engine_busy())

    def new_program_notice(self) -> dict | None:
        """The prescription the clinic sent, while no session has used it yet."""
        if self.rx is None:
            return None
        return self.prescription.clinic_arrival(self.sessions())

    # ------------------------------------------------------------------ USB
    def find_import_files(self, extra_dirs=()) -> list[Path]:
        return self.usb.prescription_files(extra_dirs)

    def find_key_files(self, extra_dirs=()) -> list[Path]:
        return self.usb.key_files(extra_dirs)

    def export_dirs(self) -> list[Path]:
        return self.usb.export_dirs()

    # ------------------------------------------------------------------ engine
    def new_engine(self):
        """An engine for the current prescription (one per session), from the device. It
        refuses to start once a sync has installed another prescription."""
        # The fingerprint of the very program the engine holds (its source as read), not
        # one read from the file apart from it, so a sync landing between two reads cannot
        # vouch for another program than the engine's.
        rx, data_dir = self.rx, self._data_path
        built_for = prescriptions.sha256_of(rx.source)
        self.engine = self.device.new_engine(
            rx, still_active=lambda: prescriptions.active_sha256(data_dir) == built_for)
        return self.engine

    def drop_engine(self) -> None:
        """The screens let go of the session's engine (Preparation left without a start)."""
        self.engine = None

    def _engine_busy(self) -> bool:
        # A session prepared, running or paused: the screens show the engine's program
        # until it has ended or is dropped (the log's session lock keeps an install from
        # landing mid-session; a prepared engine refuses to start once one has landed).
        # The engine's own flag: no whole-state snapshot taken under its lock for it.
        return self.engine is not None and not self.engine.ended

    # ------------------------------------------------------------------ log
    def sessions(self, full: bool = False) -> list[dict]:
        return self.session_log.sessions(full)

    def logged_session(self, session_id: str) -> dict | None:
        """One session as the log holds it (None: not in the log)."""
        return self.session_log.session(session_id)

    def session_starts(self, this_rx: bool = True) -> list[tuple[dt.datetime, str]]:
        return self.session_log.session_starts(self.rx.id if (this_rx and self.rx is not None) else None)

    def adherence(self):
        """(completed this week, sessions per week), or None without a prescription."""
        return self.session_log.adherence(self.rx)

    def weekly_history(self, weeks: int = 6) -> list[tuple[dt.date, int, float]]:
        return self.session_log.weekly_history(self.rx, weeks)

    def due_text_params(self) -> dict:
        """When the next session may start (SessionLog.next_start)."""
        now = None
        if self._today is not None:       # a fixed date (pictures, tests): its midday
            now = dt.datetime.combine(self._today, dt.time(12, 0)).astimezone()
        return self.session_log.next_start(self.rx, now=now)

    def warnings(self) -> list[Warning_]:
        return self.session_log.warnings(self.rx, demo=self.rx_demo,
                                         pads_changed_at_count=self.settings.get("pads_changed_at_count", 0))

    def export_log(self, dest_dir) -> Path:
        return self.session_log.export(dest_dir, data_dir=self.config.data_dir,
                                       device_key_path=self.config.device_key_path)

    # ------------------------------------------------------------------ clinician keys
    def trust_key(self, path) -> str:
        """Trust a clinician's public key (clinic mode only); returns its key id."""
        key_id = self.clinician_keys.add(path)
        if self.rx is not None:
            self.load_current_prescription()  # its signature may verify now
        return key_id

    def trusted_keys(self) -> dict[str, str]:
        return self.clinician_keys.labels()

    def untrust_key(self, key_id: str) -> str:
        """Stop trusting a clinician's key (clinic mode only), logged; returns its label."""
        label = self.clinician_keys.remove(key_id)
        if self.rx is not None:
            self.load_current_prescription()  # its signature may no longer verify
        return label

    # ------------------------------------------------------------------ clinic
    def start_clinic_link(self) -> None:
        """The log's sync with the clinic, on its own threads (homeapp/clinic_link.py)."""
        from homeapp.clinic_link import ClinicLink
        self.clinic = ClinicLink(config=self.config, trust=self._trust(),
                                 on_change=lambda: self.on_clinic_change and self.on_clinic_change())

    def clinic_status(self) -> dict | None:
        """The clinic link's status (None: no clinic link in this app)."""
        return self.clinic.status() if self.clinic is not None else None

    def sync_soon(self) -> None:
        if self.clinic is not None:
            self.clinic.poke()

    # ------------------------------------------------------------------ PINs
    def pin_configured(self, role: str) -> bool:
        return self.access.configured(role)

    def pin_lockout_s(self, role: str) -> float:
        """Seconds until `role` may try a PIN again (0 when it may now)."""
        return self.access.lockout_s(role)

    def verify_pin(self, role: str, pin: str) -> bool:
        """Checks the role's PIN, with the lockout after repeated wrong ones."""
        return self.access.verify(role, pin)

    # ------------------------------------------------------------------ Home's start check
    def start_refusals(self) -> list:
        """Every reason a session may not start now, as Home shows them: the engine's own
        check on an idle engine (homeapp.start_check), plus a log that cannot be written."""
        if self._start_check is None:
            from homeapp.start_check import StartCheck
            self._start_check = StartCheck(device=self.device)
        return self._start_check.refusals(self.rx, caregiver_unlocked=self.caregiver_unlocked)
