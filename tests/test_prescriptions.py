"""homeapp/prescriptions.py: the one path a prescription takes onto the device, from a USB
stick (the touchscreen's Services) or from the clinic (homeapp/sync.py)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from homeapp import prescriptions
from homeapp.store import Store
from homeapp.ui.services import Services
from schedules.signing import TrustStore, generate_keypair, sign_prescription

DATA = Path(__file__).parent / "data"
TODAY = dt.date(2026, 12, 1)


def rx_dict(rx_id="rx-0001", **changes):
    data = json.loads((DATA / "rx-valid-contract-example.json").read_text())
    data.update(id=rx_id, issued="2026-11-20", expires="2027-02-20", **changes)
    return data


@pytest.fixture
def keys(tmp_path):
    private, public = generate_keypair()
    trust = TrustStore(tmp_path / "trust")
    trust.add(public, label="dr-a")
    return private, trust


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "homeapp.db") as s:
        yield s


def events(store, kind):
    return [e["detail"] for e in store.device_events() if e["kind"] == kind]


def test_a_signed_prescription_is_installed_and_logged(tmp_path, keys, store):
    private, trust = keys
    signed = sign_prescription(rx_dict(), private)
    done = prescriptions.install(signed, tmp_path / "data", trust=trust, store=store, origin="clinic", today=TODAY)
    assert done.ok and done.warnings == []
    assert json.loads((tmp_path / "data" / "prescription.json").read_text()) == signed
    assert prescriptions.active_sha256(tmp_path / "data") == done.sha256 == prescriptions.sha256_of(signed)
    [logged] = events(store, "prescription_installed")
    assert logged["origin"] == "clinic" and logged["id"] == "rx-0001" and logged["sha256"] == done.sha256
    assert prescriptions.arrival(tmp_path / "data")["id"] == "rx-0001"
    active = prescriptions.load_active(tmp_path / "data", trust=trust, today=TODAY)
    assert active.trusted and active.rx.id == "rx-0001"


@pytest.mark.parametrize("case, reason", [
    ("unsigned", "unsigned"),
    ("tampered", "altered after signing"),
    ("untrusted", "unknown key"),
    ("invalid", "blocks[0].hz"),
])
def test_what_does_not_verify_never_becomes_active(tmp_path, keys, store, case, reason):
    private, trust = keys
    data_dir = tmp_path / "data"
    first = sign_prescription(rx_dict("rx-old"), private)
    assert prescriptions.install(first, data_dir, trust=trust, store=store, origin="clinic", today=TODAY).ok
    before = (data_dir / "prescription.json").read_bytes()
    rx = rx_dict("rx-new")
    if case == "tampered":
        rx = sign_prescription(rx, private)
        rx["channels"][0]["max_ma"] = 90
    elif case == "untrusted":
        rx = sign_prescription(rx, generate_keypair()[0])
    elif case == "invalid":
        rx["blocks"][0]["hz"] = 400
        rx = sign_prescription(rx, private)
    done = prescriptions.install(rx, data_dir, trust=trust, store=store, origin="clinic", today=TODAY)
    assert not done.ok and reason in " ".join(done.reasons)
    assert (data_dir / "prescription.json").read_bytes() == before
    [refused] = events(store, "prescription_refused")
    assert refused["id"] == "rx-new" and refused["origin"] == "clinic" and reason in " ".join(refused["reasons"])


def test_a_simulated_board_takes_an_unsigned_usb_file_with_a_warning(tmp_path, keys, store):
    _, trust = keys
    path = tmp_path / "usb.json"
    path.write_text(json.dumps(rx_dict()))
    done = prescriptions.install(path, tmp_path / "data", trust=trust, store=store, origin="usb",
                                 allow_unsigned=True, today=TODAY)
    assert done.ok and done.warnings == ["unsigned"]
    assert (tmp_path / "data" / "prescription.json").read_bytes() == path.read_bytes()  # byte for byte
    [logged] = events(store, "prescription_installed")
    assert logged["signature_problem"] == "unsigned" and logged["signed_by"] is None


def test_never_while_a_session_runs(tmp_path, keys, store):
    private, trust = keys
    data_dir = tmp_path / "data"
    lock = prescriptions.session_lock_path(store.path)
    store.start_session(session_id="s-1", prescription_id="rx-0001", started_at=dt.datetime.now(dt.timezone.utc),
                        planned_contractions=3, channels=1)
    signed = sign_prescription(rx_dict(), private)
    with pytest.raises(prescriptions.SessionRunning):
        prescriptions.install(signed, data_dir, trust=trust, store=store, origin="clinic", today=TODAY,
                              session_lock=lock)
    assert not (data_dir / "prescription.json").exists()
    assert events(store, "prescription_installed") == []
    store.end_session("s-1", status="completed", ended_at=dt.datetime.now(dt.timezone.utc))
    assert prescriptions.install(signed, data_dir, trust=trust, store=store, origin="clinic", today=TODAY,
                                 session_lock=lock).ok


def test_the_usb_import_takes_the_same_path_and_logs(tmp_path, keys, store):
    private, trust = keys
    from dataclasses import replace

    from homeapp.config import config_from_dict
    config = replace(config_from_dict({}, source=None, data_dir_default=tmp_path / "data"),
                     trust_dir=tmp_path / "trust", board="real")
    device = SimpleNamespace(store=store, trust=trust, simulated=False, hands=None)  # a Device's parts
    svc = Services(config=config, device=device, today=TODAY)
    unsigned = tmp_path / "usb" / "rx.json"
    unsigned.parent.mkdir()
    unsigned.write_text(json.dumps(rx_dict()))
    assert svc.import_prescription(unsigned) == (False, ["unsigned"])
    assert events(store, "prescription_refused")[0]["origin"] == "usb"
    signed = tmp_path / "usb" / "signed.json"
    signed.write_text(json.dumps(sign_prescription(rx_dict(), private)))
    assert svc.import_prescription(signed) == (True, [])
    assert svc.rx.id == "rx-0001"
    assert events(store, "prescription_installed")[0]["origin"] == "usb"
