"""PIN lockouts are kept in the device's store: a restart does not lift them."""
import datetime as dt
from types import SimpleNamespace

import pytest

import homeapp.store as store_mod
from homeapp.pinhash import hash_pin
from homeapp.store import Store
from homeapp.ui.services import PIN_ATTEMPTS, PIN_LOCKOUT_S, Services

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def wall(monkeypatch):
    now = {"t": T0}
    monkeypatch.setattr(store_mod, "now_utc", lambda: now["t"])
    return now


def _services(db_path):
    from dataclasses import replace

    from homeapp.config import config_from_dict
    store = Store.open(db_path)
    config = replace(config_from_dict({}, source=None, data_dir_default=db_path.parent / "data"),
                     caregiver_pin_hash=hash_pin("2468"), clinician_pin_hash=None)
    device = SimpleNamespace(store=store, trust=None, simulated=False, hands=None)  # a Device's parts
    return Services(config=config, device=device), store


def test_a_lockout_and_its_count_survive_a_restart(tmp_path, wall):
    db_path = tmp_path / "log.sqlite"
    svc, store = _services(db_path)
    for _ in range(PIN_ATTEMPTS - 1):
        assert not svc.verify_pin("caregiver", "1111")
    store.close()
    svc, store = _services(db_path)           # restart: the count of wrong PINs is kept
    assert not svc.verify_pin("caregiver", "1111")
    assert svc.pin_lockout_s("caregiver") == PIN_LOCKOUT_S
    store.close()

    wall["t"] = T0 + dt.timedelta(minutes=3)  # power cut, restart 3 minutes in
    svc, store = _services(db_path)
    assert svc.pin_lockout_s("caregiver") == pytest.approx(PIN_LOCKOUT_S - 180)
    assert not svc.verify_pin("caregiver", "2468")
    store.close()

    wall["t"] = T0 + dt.timedelta(seconds=PIN_LOCKOUT_S + 1)
    svc, store = _services(db_path)
    assert svc.pin_lockout_s("caregiver") == 0
    assert svc.verify_pin("caregiver", "2468")
    assert store.pin_state("caregiver") == (0, None)
    store.close()


def test_a_clock_set_back_cannot_stretch_a_lockout(tmp_path, wall):
    svc, store = _services(tmp_path / "log.sqlite")
    for _ in range(PIN_ATTEMPTS):
        svc.verify_pin("caregiver", "1111")
    wall["t"] = T0 - dt.timedelta(days=1)
    assert svc.pin_lockout_s("caregiver") == PIN_LOCKOUT_S
    store.close()
