"""The touchscreen's services, each on its own and without Kivy, on real SQLite logs and
real files: the active prescription, the session log, PIN access, USB files, the clinician
keys, the settings, and the `Services` facade over a device from the one factory."""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from homeapp.access import DEMO_PIN, RoleAccess
from homeapp.active_prescription import ActivePrescription
from homeapp.clinician_keys import ClinicianKeys
from homeapp.pin_lockout import PIN_ATTEMPTS, PIN_LOCKOUT_S
from homeapp.pinhash import hash_pin
from homeapp.session_log import PAD_WARN_SESSIONS, SessionLog
from homeapp.settings import SETTINGS_FILE, DeviceSettings
from homeapp.store import Store
from homeapp.usb import UsbFiles
from schedules.signing import TrustStore, generate_keypair, save_public_key, sign_prescription
from schedules.validate import parse_prescription
from tests.sessionkit import rx_dict

TODAY = dt.date.today()


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "homeapp.db") as s:
        yield s


@pytest.fixture
def keys(tmp_path):
    private, public = generate_keypair()
    trust = TrustStore(tmp_path / "trust")
    trust.add(public, label="dr-a")
    return private, trust


def log_session(store, rx, sid, *, started, ran_s=900, status="completed"):
    store.save_prescription(rx)
    store.start_session(session_id=sid, prescription_id=rx.id, started_at=started,
                        planned_contractions=6, channels=2)
    store.end_session(sid, status=status, ended_at=started + dt.timedelta(seconds=ran_s))


def device_events(store, kind):
    return [e["detail"] for e in store.device_events() if e["kind"] == kind]


# ----------------------------------------------------------------------- settings

def test_settings_survive_a_restart_and_a_damaged_file_is_empty(tmp_path):
    settings = DeviceSettings(tmp_path, default_language="sv")
    assert settings.language == "sv"
    settings.update(language="en", rx_demo=True)
    again = DeviceSettings(tmp_path, default_language="sv")
    assert again.language == "en" and again.get("rx_demo") is True
    (tmp_path / SETTINGS_FILE).write_text("{not json")
    assert DeviceSettings(tmp_path).values == {}


# ------------------------------------------------------------------ prescription

def prescription(tmp_path, store, trust, *, simulated):
    return ActivePrescription(tmp_path / "data", trust=trust, store=store, simulated=simulated,
                              settings=DeviceSettings(tmp_path / "data"), today=lambda: TODAY)


def test_a_real_board_refuses_an_unsigned_import_and_takes_a_signed_one(tmp_path, store, keys):
    private, trust = keys
    active = prescription(tmp_path, store, trust, simulated=False)
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps(rx_dict()))
    assert active.import_file(unsigned) == (False, ["unsigned"])
    assert active.rx is None and not (tmp_path / "data" / "prescription.json").exists()
    signed = tmp_path / "signed.json"
    signed.write_text(json.dumps(sign_prescription(rx_dict(), private)))
    assert active.import_file(signed) == (True, [])
    assert active.rx.id == "rx-test" and not active.demo
    assert [e["origin"] for e in device_events(store, "prescription_installed")] == ["usb"]
    # a restart loads it again, verified
    again = prescription(tmp_path, store, trust, simulated=False)
    again.load()
    assert again.rx.id == "rx-test" and again.signature_problem(again.rx) is None


def test_the_simulated_board_takes_an_unsigned_import_with_the_problem_shown(tmp_path, store, keys):
    active = prescription(tmp_path, store, keys[1], simulated=True)
    path = tmp_path / "unsigned.json"
    path.write_text(json.dumps(rx_dict()))
    assert active.import_file(path) == (True, ["unsigned"])
    assert active.signature_problem(active.rx) == "unsigned"


def test_an_invalid_file_names_every_problem_and_loads_nothing(tmp_path, store, keys):
    active = prescription(tmp_path, store, keys[1], simulated=True)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rx_dict(sessions_per_week=0, blocks=[])))
    rx, problems, sig = active.check_file(path)
    assert rx is None and sig is None and len(problems) >= 2
    assert any("sessions_per_week" in p for p in problems) and any("blocks" in p for p in problems)
    ok, reasons = active.import_file(path)
    assert not ok and reasons == problems


def test_the_demo_is_for_the_simulated_board_and_follows_the_language(tmp_path, store, keys):
    real = prescription(tmp_path / "real", store, keys[1], simulated=False)
    assert real.load_demo("en") is False and real.rx is None
    active = prescription(tmp_path, store, keys[1], simulated=True)
    assert active.load_demo("en") is True and active.demo
    issued, labels_en = active.rx.issued, [ch.label for ch in active.rx.channels]
    active.relabel_demo("sv")
    assert active.demo and active.rx.issued == issued
    assert [ch.label for ch in active.rx.channels] != labels_en
    # an import replaces the DEMO, and a restart knows it is no longer the DEMO
    path = tmp_path / "rx.json"
    path.write_text(json.dumps(rx_dict()))
    assert active.import_file(path)[0]
    again = prescription(tmp_path, store, keys[1], simulated=True)
    again.load()
    assert again.rx.id == "rx-test" and not again.demo


def test_a_prescription_from_the_clinic_is_read_only_when_no_session_is_busy(tmp_path, store, keys):
    from homeapp import prescriptions
    private, trust = keys
    active = prescription(tmp_path, store, trust, simulated=False)
    active.load()
    assert active.rx is None
    done = prescriptions.install(sign_prescription(rx_dict(), private), tmp_path / "data", trust=trust,
                                 store=store, origin="clinic", today=TODAY)
    assert done.ok
    assert active.reload_if_changed(session_busy=True) is False and active.rx is None
    assert active.reload_if_changed(session_busy=False) is True and active.rx.id == "rx-test"
    assert active.reload_if_changed(session_busy=False) is False       # nothing new since
    assert active.clinic_arrival([])["origin"] == "clinic"
    assert active.clinic_arrival([{"prescription_id": "rx-test"}]) is None   # a session used it


# ------------------------------------------------------------------ the session log

def test_the_log_reads_sessions_adherence_and_the_next_start(store):
    rx = parse_prescription(rx_dict(max_sessions_per_day=1, sessions_per_week=7))
    today = dt.date.today()
    noon = dt.datetime.combine(today, dt.time(12)).astimezone()     # the log's now: any hour the test runs
    log = SessionLog(store, today=lambda: today)
    assert log.sessions() == [] and log.adherence(rx) == (0, 7) and log.next_start(rx, now=noon) == {"when": "now"}
    log_session(store, rx, "s1", started=noon - dt.timedelta(minutes=20))
    [s1] = log.sessions()
    assert s1["id"] == "s1" and s1["status"] == "completed"
    assert log.session("s1")["channels"] and log.session("nope") is None
    assert log.adherence(rx) == (1, 7)
    assert log.weekly_history(rx)[-1][1] == 1
    assert log.next_start(rx, now=noon)["when"] == "later"      # one a day, and today's is done
    assert log.next_start(None) == {"when": "none"}


def test_home_warns_of_old_pads_a_cut_short_session_and_an_ending_program(store):
    rx = parse_prescription(rx_dict(expires=(TODAY + dt.timedelta(days=5)).isoformat()))
    log = SessionLog(store, today=lambda: TODAY)
    start = dt.datetime(2026, 1, 1, 9, tzinfo=dt.timezone.utc)
    for i in range(PAD_WARN_SESSIONS):
        log_session(store, rx, f"s{i}", started=start + dt.timedelta(days=i),
                    status="stopped" if i == PAD_WARN_SESSIONS - 1 else "completed")
    kinds = {w.kind: w.params for w in log.warnings(rx, demo=True)}
    assert set(kinds) == {"demo", "rx_expiring", "pads_old", "cut_short"}
    assert kinds["rx_expiring"]["days"] == 5 and kinds["pads_old"]["n"] == PAD_WARN_SESSIONS
    after_new_pads = {w.kind for w in log.warnings(rx, pads_changed_at_count=PAD_WARN_SESSIONS)}
    assert after_new_pads == {"rx_expiring", "cut_short"}
    assert [w.kind for w in log.warnings(None)] == ["no_rx"]


def test_the_export_writes_json_csv_and_a_bundle_the_device_key_verifies(tmp_path, store):
    from homeapp.bundle import verify_bundle
    from schedules.signing import load_public_key
    rx = parse_prescription(rx_dict())
    log_session(store, rx, "s1", started=dt.datetime(2026, 1, 1, 9, tzinfo=dt.timezone.utc))
    out = SessionLog(store).export(tmp_path / "usb", data_dir=tmp_path / "data",
                                   now=dt.datetime(2026, 1, 2, 10, 0, 0))
    assert out.name == "homeapp-log-20260102-100000.json"
    assert [s["id"] for s in json.loads(out.read_text())["sessions"]] == ["s1"]
    assert "s1" in out.with_suffix(".csv").read_text()
    public = load_public_key(tmp_path / "usb" / "homeapp-device-key.pub")
    assert verify_bundle(out.with_suffix(".bundle"), public) == []


def test_a_log_that_cannot_be_read_shows_as_empty(tmp_path):
    store = Store.open(tmp_path / "log.db")
    store.close()
    log = SessionLog(store)
    assert log.sessions() == [] and log.session_starts() == [] and log.session("s1") is None


# ------------------------------------------------------------------ PIN access

def test_a_configured_pin_opens_its_role_and_the_demo_pin_does_not(tmp_path, store):
    access = RoleAccess(pin_hashes={"caregiver": hash_pin("2468"), "clinician": None}, store=store,
                        simulated=True)
    assert access.configured("caregiver") and not access.configured("clinician")
    assert not access.verify("caregiver", DEMO_PIN)
    assert access.verify("caregiver", "2468")
    assert access.verify("clinician", DEMO_PIN)                 # none configured, simulated board
    real = RoleAccess(pin_hashes={}, store=store, simulated=False)
    assert not real.verify("clinician", DEMO_PIN)


@pytest.mark.parametrize("with_log", [True, False], ids=["in the log", "no log"])
def test_wrong_pins_lock_the_role_out(tmp_path, with_log):
    store = Store.open(tmp_path / "log.db") if with_log else None
    try:
        access = RoleAccess(pin_hashes={"caregiver": hash_pin("2468")}, store=store)
        for _ in range(PIN_ATTEMPTS):
            assert not access.verify("caregiver", "1111")
        assert access.lockout_s("caregiver") == pytest.approx(PIN_LOCKOUT_S, abs=2)
        assert not access.verify("caregiver", "2468")             # refused unchecked while locked
        assert access.lockout_s("clinician") == 0
        if with_log:
            assert device_events(store, "pin_lockout")[0]["role"] == "caregiver"
            restarted = RoleAccess(pin_hashes={"caregiver": hash_pin("2468")}, store=store)
            assert restarted.lockout_s("caregiver") > 0
    finally:
        if store is not None:
            store.close()


# ------------------------------------------------------------------ USB files

def test_usb_files_are_found_on_the_sticks_and_in_the_data_folder(tmp_path):
    stick = tmp_path / "media" / "pi" / "STICK"
    (stick / "rx").mkdir(parents=True)
    (stick / "rx" / "a.json").write_text("{}")
    (stick / "big.json").write_bytes(b" " * 1_000_001)        # too big to be a prescription
    (stick / "dr-a.pub").write_text("key")
    (tmp_path / "data" / "import").mkdir(parents=True)
    (tmp_path / "data" / "import" / "b.json").write_text("{}")
    usb = UsbFiles(tmp_path / "data", roots=[tmp_path / "media", tmp_path / "missing"])
    assert usb.prescription_files() == [stick / "rx" / "a.json", tmp_path / "data" / "import" / "b.json"]
    assert usb.key_files() == [stick / "dr-a.pub"]
    assert usb.export_dirs()[-1] == tmp_path / "data" / "export"   # the sticks here are not mounts
    other = tmp_path / "other"
    other.mkdir()
    (other / "c.json").write_text("{}")
    assert usb.prescription_files([other])[-1] == other / "c.json"


# ------------------------------------------------------------------ clinician keys

def test_clinician_keys_are_added_listed_and_removed_with_a_log_entry(tmp_path, store):
    trust = TrustStore(tmp_path / "trust")
    keys = ClinicianKeys(trust, store=store)
    _private, public = generate_keypair()
    path = tmp_path / "Dr Berg.pub"
    save_public_key(path, public)
    key_id = keys.add(path)
    assert keys.labels() == {key_id: "Dr-Berg"}
    assert keys.remove(key_id) == "Dr-Berg"
    assert keys.labels() == {}
    assert device_events(store, "trust_removed") == [{"key_id": key_id, "label": "Dr-Berg", "by": "clinician mode"}]
    with pytest.raises(ValueError):
        keys.remove(key_id)


# ------------------------------------------------------------------ the facade

def test_services_open_a_device_from_the_factory_and_delegate(tmp_path):
    from homeapp.config import config_from_dict
    from homeapp.services import Services
    from hw.clock import VirtualClock
    from homeapp.device import open_device

    config = config_from_dict({}, source=None, data_dir_default=tmp_path / "data")
    svc = Services.open(config=config, device=open_device(config, clock=VirtualClock(), sigterm=False),
                        clinic_link=False)
    try:
        assert svc.simulated and svc.show_trainer_panel and svc.trainer_hands is not None
        assert svc.rx is None and [w.kind for w in svc.warnings()] == ["no_rx"]
        path = tmp_path / "rx.json"
        path.write_text(json.dumps(rx_dict()))
        assert svc.import_prescription(path) == (True, ["unsigned"])
        engine = svc.new_engine()
        assert engine.rx is svc.rx and svc.engine is engine
        assert svc.verify_pin("caregiver", DEMO_PIN)
        svc.save_language("sv")
        assert json.loads((tmp_path / "data" / SETTINGS_FILE).read_text())["language"] == "sv"
    finally:
        svc.close()
    assert os.path.exists(tmp_path / "data" / "homeapp.db")


def test_a_prepared_engine_is_judged_by_the_program_it_holds_not_a_fingerprint_kept_beside(tmp_path):
    from homeapp import prescriptions
    from homeapp.config import config_from_dict
    from homeapp.device import open_device
    from homeapp.services import Services
    from hw.clock import VirtualClock

    config = config_from_dict({}, source=None, data_dir_default=tmp_path / "data")
    svc = Services.open(config=config, device=open_device(config, clock=VirtualClock(), sigterm=False),
                        clinic_link=False)
    try:
        path = tmp_path / "rx.json"
        path.write_text(json.dumps(rx_dict()))
        assert svc.import_prescription(path)[0]
        # a load whose two reads of the file straddled a sync's install keeps another
        # fingerprint than the program it loaded: the program itself is what is judged
        svc.prescription.sha256 = "the fingerprint of the program installed before"
        engine = svc.new_engine()
        assert "prescription_changed" not in [r.kind for r in engine.start_refusals()]
        other = rx_dict()
        other["id"] = "rx-other"
        assert prescriptions.install(other, svc.data_dir, trust=svc.device.trust, store=svc.device.store,
                                     origin="clinic", allow_unsigned=True).ok
        assert "prescription_changed" in [r.kind for r in engine.start_refusals()]
    finally:
        svc.close()


def test_a_fixed_date_is_also_the_date_the_next_start_is_judged_on(store):
    from types import SimpleNamespace

    from homeapp.services import Services

    day = TODAY - dt.timedelta(days=30)
    rx = parse_prescription(rx_dict(issued=(day - dt.timedelta(days=5)).isoformat(),
                                    expires=(day + dt.timedelta(days=5)).isoformat()), today=day)
    from homeapp.config import config_from_dict
    config = config_from_dict({}, source=None, data_dir_default=store.path.parent / "data")
    device = SimpleNamespace(store=store, trust=None, simulated=False, hands=None)  # a Device's parts
    svc = Services(config=config, device=device, today=day)
    svc.rx = rx
    assert svc.due_text_params() == {"when": "now"}          # not "never": it ended in real time
    assert Services(config=config, device=device).session_log \
        .next_start(rx) == {"when": "never"}
