"""What the screens need from the rest of the project, in one place.

The screens never touch the board, the store or files themselves: they ask this object,
which wraps the lead's `homeapp.device` / `homeapp.engine`, the log store, adherence, the
prescription on the device and the PINs. Every call here is quick; the engine runs its
loop in its own thread and the UI only reads its `state` snapshots.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeapp.pin_lockout import PIN_ATTEMPTS, PIN_LOCKOUT_S, PinLockout

log = logging.getLogger(__name__)

#: File names under the data directory.
RX_FILE = "prescription.json"
UI_FILE = "ui.json"
#: On the simulated board with no PIN configured, this PIN opens caregiver and clinician
#: mode (the screen says so). A real board refuses to start without hashed PINs.
DEMO_PIN = "0000"
#: Where USB sticks appear on Raspberry Pi OS.
USB_ROOTS = ("/media", "/mnt", "/run/media")
PAD_WARN_SESSIONS = 20      # self-adhesive pads: replace after about 20 sessions


@dataclass(frozen=True)
class Warning_:
    kind: str                 # "rx_expiring", "rx_expired", "pads_old", "cut_short", "no_rx", "demo"
    params: dict


class Services:
    """Owns the device (board, clock, store, trust) and the current prescription."""

    def __init__(self, config=None, device=None, today=None):
        self.config = config
        self.device = device
        self._today = today
        self.rx = None
        self.rx_demo = False
        self.rx_problem: str | None = None
        self.caregiver_unlocked = False
        self.engine = None
        self._ui_state: dict[str, Any] = {}
        self._pin_failures: dict[str, int] = {}
        self._pin_locked_until: dict[str, float] = {}
        self._pin_lockout: PinLockout | None = None

    # ------------------------------------------------------------------ set-up
    @classmethod
    def open(cls, config_path=None) -> "Services":
        from homeapp.config import load_config
        config = load_config(config_path)
        from homeapp.device import open_device
        device = open_device(config)
        svc = cls(config=config, device=device)
        svc._load_ui_state()
        svc.load_current_prescription()
        svc.start_clinic_link()
        return svc

    def close(self) -> None:
        eng, self.engine = self.engine, None
        if getattr(self, "_closed", False):
            return
        self._closed = True
        if getattr(self, "clinic", None) is not None:
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

    @property
    def simulated(self) -> bool:
        if self.device is not None:
            return bool(getattr(self.device, "simulated", getattr(self.device, "sim_board", None) is not None))
        return self.config is None or getattr(self.config, "board", "simulated") == "simulated"

    @property
    def sim_board(self):
        return getattr(self.device, "sim_board", None)

    @property
    def store(self):
        return getattr(self.device, "store", None)

    @property
    def show_trainer_panel(self) -> bool:
        return self.simulated and self.sim_board is not None and bool(
            getattr(self.config, "show_trainer_panel", True))

    @property
    def data_dir(self) -> Path:
        d = Path(getattr(self.config, "data_dir", None) or Path.home() / ".local/share/homeapp")
        d.mkdir(parents=True, exist_ok=True)
        return d

    def today(self) -> dt.date:
        return self._today or dt.date.today()

    # ------------------------------------------------------------------ UI settings
    def _load_ui_state(self) -> None:
        try:
            self._ui_state = json.loads((self.data_dir / UI_FILE).read_text())
        except (OSError, ValueError):
            self._ui_state = {}

    def language(self) -> str:
        return self._ui_state.get("language") or getattr(self.config, "language", "en") or "en"

    def save_language(self, lang: str) -> None:
        self._ui_state["language"] = lang
        try:
            (self.data_dir / UI_FILE).write_text(json.dumps(self._ui_state))
        except OSError:
            log.warning("cannot save the language choice")

    # ------------------------------------------------------------------ prescription
    def load_current_prescription(self) -> None:
        from homeapp import prescriptions
        sha = prescriptions.active_sha256(self.data_dir)
        if sha != getattr(self, "_rx_sha", None):
            self.caregiver_unlocked = False   # an unlock is for the program it was given under
        self._rx_sha = sha
        path = self.data_dir / RX_FILE
        self.rx, self.rx_demo, self.rx_problem = None, False, None
        if not path.exists():
            return
        try:
            rx, _problem = self._read_rx(path)
        except ValueError as e:
            self.rx_problem = str(e)
            return
        self.rx = rx
        self.rx_demo = bool(self._ui_state.get("rx_demo")) and self.simulated

    def _read_rx(self, path) -> tuple[Any, str | None]:
        """Validated prescription and the signature problem (None when verified)."""
        from homeapp import prescriptions
        checked = prescriptions.check(path, trust=self._trust(), today=self.today())
        if checked.rx is None:
            raise ValueError("\n".join(checked.problems))
        return checked.rx, checked.signature_problem

    def _trust(self):
        trust = getattr(self.device, "trust", None)
        if trust is None:
            try:
                from schedules.signing import TrustStore
                trust = TrustStore(self.config.trust_dir)
            except Exception:
                return None
        return trust

    def signature_problem(self, rx) -> str | None:
        # fails closed: anything but a verified signature is a problem to show
        from homeapp import prescriptions
        return prescriptions.signature_problem(rx, self._trust())

    def check_import(self, path) -> tuple[Any | None, list[str], str | None]:
        """(prescription or None, problems, signature problem) for a file to import."""
        try:
            rx, sig = self._read_rx(path)
        except ValueError as e:
            return None, str(e).splitlines(), None
        return rx, [], sig

    def import_prescription(self, path) -> tuple[bool, list[str]]:
        """Validate, verify and make `path` the device's prescription. On a real board an
        unsigned or untrusted prescription is refused; on the simulated board it is taken
        with the signature problem shown. The same path as a prescription from the clinic
        (homeapp/prescriptions.py), which logs the install or the refusal."""
        from homeapp import prescriptions
        store_path = getattr(self.store, "path", None)
        try:
            done = prescriptions.install(
                path, self.data_dir, trust=self._trust(), store=self.store, origin="usb",
                allow_unsigned=self.simulated, today=self.today(),
                session_lock=prescriptions.session_lock_path(store_path) if store_path else None)
        except prescriptions.SessionRunning as e:
            return False, [str(e)]
        if not done.ok:
            return False, done.reasons
        self._ui_state["rx_demo"] = False
        self.save_language(self.language())
        self.load_current_prescription()
        return True, done.warnings

    def demo_available(self) -> bool:
        return self.simulated

    def load_demo(self) -> bool:
        """A preset prescription, clearly marked DEMO, on the simulated board only."""
        if not self.simulated:
            return False
        data = demo_prescription_dict(self.today(), lang=self.language())
        path = self.data_dir / RX_FILE
        path.write_text(json.dumps(data, indent=2))
        self._ui_state["rx_demo"] = True
        self.save_language(self.language())
        self.load_current_prescription()
        return self.rx is not None

    def relabel_demo(self) -> None:
        """The loaded DEMO rewritten in the current language, its dates kept (the device
        wrote its labels, so they follow the patient's language)."""
        if not (self.rx_demo and self.rx is not None):
            return
        data = demo_prescription_dict(self.rx.issued, lang=self.language())
        (self.data_dir / RX_FILE).write_text(json.dumps(data, indent=2))
        self.load_current_prescription()

    def find_import_files(self, extra_dirs=()) -> list[Path]:
        """Prescription files on USB sticks (and in the data directory's import folder)."""
        found: list[Path] = []
        roots = [Path(r) for r in USB_ROOTS] + [self.data_dir / "import"] + [Path(d) for d in extra_dirs]
        for root in roots:
            if not root.is_dir():
                continue
            try:
                for p in sorted(root.glob("**/*.json")):
                    if p.is_file() and len(found) < 30 and p.stat().st_size < 1_000_000:
                        found.append(p)
            except OSError:
                continue
        return found

    def export_dirs(self) -> list[Path]:
        out = []
        for r in USB_ROOTS:
            root = Path(r)
            if root.is_dir():
                for p in sorted(root.glob("*")) + sorted(root.glob("*/*")):
                    if os.path.ismount(p) and os.access(p, os.W_OK) and p not in out:
                        out.append(p)
        out.append(self.data_dir / "export")
        return out

    # ------------------------------------------------------------------ engine
    def new_engine(self):
        """An engine for the current prescription (one per session)."""
        from homeapp.engine import Engine
        d = self.device
        self.engine = Engine(prescription=self.rx, board=d.stimulator, store=d.store,
                             clock=d.clock, trust=d.trust, allow_unsigned=d.simulated)
        return self.engine

    # ------------------------------------------------------------------ log
    def sessions(self, full: bool = False) -> list[dict]:
        """The log's ended sessions in contract.md's export shape, oldest first (`full`:
        with events and the patient's report)."""
        st = self.store
        if st is None:
            return []
        try:
            if full or not hasattr(st, "sessions"):
                data = st.export()
                sessions = data.get("sessions", []) if isinstance(data, dict) else list(data)
            else:
                sessions = [s for s in st.sessions() if s.get("status") != "open"]
        except Exception:
            log.exception("reading the log")
            return []
        return sorted(sessions, key=lambda s: s.get("started_at") or "")

    def session_starts(self, this_rx: bool = True) -> list[tuple[dt.datetime, str]]:
        """(started_at, status) pairs, as schedules.adherence takes them."""
        st = self.store
        if st is not None and hasattr(st, "session_starts"):
            try:
                rx_id = self.rx.id if (this_rx and self.rx is not None) else None
                return list(st.session_starts(rx_id))
            except Exception:
                log.exception("reading session starts")
                return []
        out = []
        for s in self.sessions():
            try:
                out.append((dt.datetime.fromisoformat(s["started_at"]), s.get("status", "")))
            except (KeyError, TypeError, ValueError):
                pass
        return out

    def _weeks(self):
        from schedules.adherence import weekly_adherence
        return weekly_adherence(self.rx, self.session_starts(), today=self.today())

    def adherence(self):
        """(completed this week, sessions per week), or None without a prescription."""
        if self.rx is None:
            return None
        try:
            weeks = self._weeks()
        except Exception:
            log.exception("adherence")
            weeks = []
        monday = self.today() - dt.timedelta(days=self.today().weekday())
        done = next((w.done for w in weeks if w.first_day >= monday), 0)
        return done, self.rx.sessions_per_week

    def weekly_history(self, weeks: int = 6) -> list[tuple[dt.date, int, float]]:
        """(first day, completed, prescribed) for the last weeks of the prescription."""
        if self.rx is None:
            return []
        try:
            rows = self._weeks()[-weeks:]
        except Exception:
            log.exception("adherence")
            return []
        return [(w.first_day, w.done, w.prescribed) for w in rows]

    def export_log(self, dest_dir) -> Path:
        """The log for the clinician: a hash-chained bundle signed by this device (with the
        device's public key beside it, to verify it), and the same log as JSON and CSV."""
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        data = self.store.export() if self.store is not None else {"sessions": []}
        stem = f"homeapp-log-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
        path = dest / f"{stem}.json"
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        if self.store is not None:
            # the same log as a table, for a spreadsheet
            with open(path.with_suffix(".csv"), "w", encoding="utf-8", newline="") as f:
                self.store.export_csv(f)
            from homeapp.bundle import write_bundle
            from homeapp.device_key import device_public_key_path, ensure_device_key
            key, _key_id = ensure_device_key(self.config.data_dir,
                                             private_key_path=self.config.device_key_path)
            write_bundle(self.store, dest / f"{stem}.bundle", device_key=key)
            public = device_public_key_path(self.config.data_dir,
                                            private_key_path=self.config.device_key_path)
            shutil.copyfile(public, dest / "homeapp-device-key.pub")
        return path

    def find_key_files(self, extra_dirs=()) -> list[Path]:
        """Clinician public keys (`*.pub`) on USB sticks, to add to the trust store."""
        found: list[Path] = []
        roots = [Path(r) for r in USB_ROOTS] + [Path(d) for d in extra_dirs]
        for root in roots:
            if not root.is_dir():
                continue
            try:
                found += [p for p in sorted(root.glob("**/*.pub"))
                          if p.is_file() and p.stat().st_size < 10_000][:10]
            except OSError:
                continue
        return found

    def trust_key(self, path) -> str:
        """Add a clinician's public key to the device's trust store (clinician mode only);
        returns its key id. ValueError or KeyFileError with a reason when refused."""
        from schedules.signing import TrustStore
        label = re.sub(r"[^A-Za-z0-9._-]", "-", Path(path).stem)[:64].lstrip(".-_") or "clinician"
        trust = getattr(self.device, "trust", None) or TrustStore(self.config.trust_dir)
        key_id = trust.add(Path(path), label=label)
        if self.rx is not None:
            self.load_current_prescription()  # its signature may verify now
        return key_id

    def trusted_keys(self) -> dict[str, str]:
        """key id -> label of the clinician keys this device trusts."""
        from schedules.signing import TrustStore
        trust = getattr(self.device, "trust", None) or TrustStore(self.config.trust_dir)
        return trust.labels()

    def untrust_key(self, key_id: str) -> str:
        """Stop trusting a clinician's key (clinician mode only), logged as the device event
        `trust_removed`; a prescription it signed is refused from the next start. Returns
        the key's label; ValueError with a reason when no trusted key has that id."""
        from schedules.signing import TrustStore
        trust = getattr(self.device, "trust", None) or TrustStore(self.config.trust_dir)
        kid, label = trust.remove(key_id)
        if self.store is not None:
            self.store.add_device_event(kind="trust_removed",
                                        detail={"key_id": kid, "label": label, "by": "clinician mode"})
        if self.rx is not None:
            self.load_current_prescription()  # its signature may no longer verify
        return label

    # ------------------------------------------------------------------ clinic
    #: Set by the app: called (from a worker thread) when the clinic link has news.
    on_clinic_change = None

    def start_clinic_link(self) -> None:
        """The log's sync with the clinic, on its own threads (homeapp/clinic_link.py)."""
        from homeapp.clinic_link import ClinicLink
        self.clinic = ClinicLink(config=self.config, trust=self._trust(), session_running=self._engine_busy,
                                 on_change=lambda: self.on_clinic_change and self.on_clinic_change())

    def _engine_busy(self) -> bool:
        # a session running or paused: a new prescription waits until it has ended (the
        # log's session lock enforces it too; this only spares a useless attempt)
        eng = self.engine
        return eng is not None and eng.state.phase.value in ("running", "paused")

    def clinic_status(self) -> dict | None:
        """The clinic link's status (None: no clinic link in this app)."""
        link = getattr(self, "clinic", None)
        return link.status() if link is not None else None

    def sync_soon(self) -> None:
        link = getattr(self, "clinic", None)
        if link is not None:
            link.poke()

    def new_program_notice(self) -> dict | None:
        """The prescription the clinic sent, while no session has used it yet."""
        from homeapp import prescriptions
        note = prescriptions.arrival(self.data_dir)
        if not note or note.get("origin") != "clinic" or self.rx is None or note.get("id") != self.rx.id:
            return None
        if any(s.get("prescription_id") == self.rx.id for s in self.sessions()):
            return None
        return note

    def reload_if_changed(self) -> bool:
        """After a sync installed a prescription: read it (never while an engine is busy)."""
        from homeapp import prescriptions
        sha = prescriptions.active_sha256(self.data_dir)
        if sha == getattr(self, "_rx_sha", None) or self._engine_busy():
            return False
        self._rx_sha = sha
        self.load_current_prescription()
        return True

    # ------------------------------------------------------------------ home
    def _schedule_starts(self) -> list[tuple[dt.datetime, str]]:
        """The starts that count against the schedule, as the engine counts them: a
        session aborted within its first minutes does not use up the day's session."""
        if self.store is None or self.rx is None:
            return self.session_starts()
        from schedules.adherence import ended_early_by_safety_stop
        return [(dt.datetime.fromisoformat(s["started_at"]), s["status"])
                for s in self.store.sessions()
                if s["prescription_id"] == self.rx.id and not ended_early_by_safety_stop(s)]

    def due_text_params(self) -> dict:
        """When the next session may start: {"when": "now" | "later" | "never" | "none",
        "at": "HH:MM" or a date}."""
        if self.rx is None:
            return {"when": "none"}
        try:
            from schedules.adherence import next_session_at
            now = dt.datetime.now(dt.timezone.utc).astimezone()
            at = next_session_at(self.rx, self._schedule_starts(), now=now)
        except Exception:
            log.exception("next session")
            return {"when": "now"}
        if at is None:
            return {"when": "never"}
        if at <= now + dt.timedelta(seconds=1):
            return {"when": "now"}
        local = at.astimezone()
        if local.date() == now.date():
            return {"when": "later", "at": local.strftime("%H:%M")}
        return {"when": "later", "at": local.strftime("%Y-%m-%d %H:%M")}

    def warnings(self) -> list[Warning_]:
        out: list[Warning_] = []
        if self.rx is None:
            out.append(Warning_("no_rx", {}))
            return out
        if self.rx_demo:
            out.append(Warning_("demo", {}))
        days = (self.rx.expires - self.today()).days
        if days < 0:
            out.append(Warning_("rx_expired", {"date": self.rx.expires.isoformat()}))
        elif days <= 14:
            out.append(Warning_("rx_expiring", {"days": days, "date": self.rx.expires.isoformat()}))
        sessions = self.sessions()
        since = self._ui_state.get("pads_changed_at_count", 0)
        if len(sessions) - since >= PAD_WARN_SESSIONS:
            out.append(Warning_("pads_old", {"n": len(sessions) - since}))
        if sessions and sessions[-1].get("status") in ("stopped", "aborted", "interrupted") \
                and (self.rx is None or sessions[-1].get("prescription_id") == self.rx.id):
            out.append(Warning_("cut_short", {"status": sessions[-1].get("status")}))
        return out

    def pads_changed(self) -> None:
        self._ui_state["pads_changed_at_count"] = len(self.sessions())
        self.save_language(self.language())

    # ------------------------------------------------------------------ PINs
    def pin_configured(self, role: str) -> bool:
        return bool(getattr(self.config, f"{role}_pin_hash", None))

    def pin_lockout_s(self, role: str) -> float:
        """Seconds until `role` may try a PIN again (0 when it may now); kept in the log
        when there is one (homeapp.pin_lockout), so a restart does not lift it."""
        if self._lockout is None:
            return max(0.0, self._pin_locked_until.get(role, 0.0) - time.monotonic())
        return self._lockout.locked_for_s(role)

    def verify_pin(self, role: str, pin: str) -> bool:
        """Checks the role's PIN; after PIN_ATTEMPTS wrong ones in a row the role is locked
        for PIN_LOCKOUT_S (every try refused unchecked), and the log says so."""
        if self.pin_lockout_s(role) > 0:
            return False
        right = self._pin_matches(role, pin)
        if self._lockout is not None:
            self._lockout.record(role, right=right)
            return right
        # no log (a device that could not open it): the count lives as long as the app
        failures = 0 if right else self._pin_failures.get(role, 0) + 1
        self._pin_failures[role] = failures % PIN_ATTEMPTS
        if failures == PIN_ATTEMPTS:
            self._pin_locked_until[role] = time.monotonic() + PIN_LOCKOUT_S
        return right

    @property
    def _lockout(self) -> "PinLockout | None":
        store = self.store
        if store is None:
            return None
        if self._pin_lockout is None or self._pin_lockout.store is not store:
            self._pin_lockout = PinLockout(store)
        return self._pin_lockout

    def _pin_matches(self, role: str, pin: str) -> bool:
        hashed = getattr(self.config, f"{role}_pin_hash", None)
        if not hashed:
            return self.simulated and pin == DEMO_PIN
        from homeapp.pinhash import verify_pin
        try:
            return bool(verify_pin(pin, hashed))
        except Exception:
            return False

    # ------------------------------------------------------------------ Home's start check
    def start_refusals(self) -> list:
        """Every reason a session may not start now, as Home shows them: the engine's own
        check on an idle engine (homeapp.start_check), plus a log that cannot be written."""
        from homeapp.start_check import StartCheck
        if getattr(self, "_start_check", None) is None:
            self._start_check = StartCheck(device=self.device)
        return self._start_check.refusals(self.rx, caregiver_unlocked=self.caregiver_unlocked)


DEMO_PRESET = "quadriceps-after-knee-surgery"


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
