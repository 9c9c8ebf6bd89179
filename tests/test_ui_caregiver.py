"""Caregiver mode on the touchscreen: a PIN lockout that a restart does not lift, what the
caregiver screen explains, and an unlock that holds for one prescription only.

Real Kivy widgets under Xvfb, touches through the window, the simulated board, a real
SQLite log; the wall clock the lockout reads (homeapp.store.now_utc) is held by the test."""
from __future__ import annotations

import datetime as dt
import os

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

import homeapp.store as store_mod  # noqa: E402
from tests.uitools import UI, shots, texts, write_rx  # noqa: E402
from tests.uikit import ui  # noqa: E402,F401  (ui is a fixture)

pytestmark = pytest.mark.kivy


@pytest.fixture
def wall(monkeypatch):
    """The wall clock the PIN lockout reads, moved only by the test."""
    now = {"t": dt.datetime.now(dt.timezone.utc).replace(microsecond=0)}
    monkeypatch.setattr(store_mod, "now_utc", lambda: now["t"])
    return now


def _enter_pin(u, screen, pin):
    for k in tuple(pin) + ("ok",):
        u.tap(screen.pad.buttons[k])


def _open_caregiver(u):
    u.tap(u.app.screens["home"].header_buttons.children[1])     # Caregiver
    assert u.app.current == "caregiver"
    return u.app.screens["caregiver"]


def test_a_caregiver_lockout_holds_across_a_real_restart(tmp_path, wall):
    first = UI(tmp_path)
    try:
        care = _open_caregiver(first)
        for _attempt in range(5):
            _enter_pin(first, care, "1234")
        assert not care.unlocked
        assert "Too many wrong PINs. Try again in 5 min." in texts(care)
    finally:
        first.close()

    wall["t"] += dt.timedelta(minutes=3)        # restarted 3 minutes into the lockout
    second = UI(tmp_path)                       # a new app on the same data directory
    try:
        care = _open_caregiver(second)
        assert "Too many wrong PINs. Try again in 2 min." in texts(care)   # time left
        shots(second, "caregiver-locked-out")
        _enter_pin(second, care, "0000")        # the right PIN, still locked out
        assert not care.unlocked
        assert "Too many wrong PINs. Try again in 2 min." in texts(care)
        assert care.panel.parent is None        # nothing of caregiver mode is shown

        wall["t"] += dt.timedelta(minutes=2, seconds=1)   # the lockout is over
        second.app.go("home")
        care = _open_caregiver(second)
        assert not any("Too many wrong PINs" in t for t in texts(care))
        _enter_pin(second, care, "0000")
        assert care.unlocked
        assert care.panel.parent is not None
        lockouts = [e for e in second.device.store.device_events() if e["kind"] == "pin_lockout"]
        assert [e["detail"]["role"] for e in lockouts] == ["caregiver"]
    finally:
        second.close()


def test_the_caregiver_screen_says_what_the_unlock_does_and_where_to_stop(ui):
    care = _open_caregiver(ui)
    _enter_pin(ui, care, "0000")                # simulated board, no PIN configured
    assert care.unlocked
    shown = texts(care)
    assert any(t.startswith("Unlock the next session: a program that needs a caregiver present "
                            "starts only after this.") and "new program is installed" in t for t in shown)
    assert any(t.startswith("To stop a session: touch the red STOP on the session screen.") for t in shown)
    assert "This program does not need a caregiver present." in shown
    # no STOP here that could never be touched (this screen opens from Home only)
    assert not any(t.startswith("STOP") for t in shown)
    shots(ui, "caregiver")


def test_an_unlock_does_not_carry_over_to_a_prescription_imported_after_it(tmp_path):
    from homeapp.pinhash import hash_pin
    u = UI(tmp_path, config_extra={"security": {"caregiver_pin_hash": hash_pin("2468")}},
           rx_changes={"supervision": "caregiver"})
    try:
        care = _open_caregiver(u)
        _enter_pin(u, care, "2468")
        assert "This program needs a caregiver present." in texts(care)
        u.tap(care.unlock)
        assert u.svc.caregiver_unlocked and care.unlock.text == "Next session unlocked"
        u.svc.load_current_prescription()       # the same program read again: still unlocked
        assert u.svc.caregiver_unlocked
        u.app.go("home")

        ok, problems = u.svc.import_prescription(write_rx(tmp_path / "stick", id="rx-ui-test-0002",
                                                          supervision="caregiver"))
        assert ok, problems
        assert u.svc.rx.id == "rx-ui-test-0002"
        assert u.svc.caregiver_unlocked is False
        care = _open_caregiver(u)
        _enter_pin(u, care, "2468")
        assert care.unlock.text == "Unlock the next session"
        u.app.go("home")
        # the new program's session waits for a caregiver of its own
        u.tap(u.app.screens["home"].start)
        prep = u.app.screens["prepare"]
        u.wait_until(lambda: prep.contacts is not None)
        u.tap(prep.skin)
        u.wait_until(lambda: "A caregiver must unlock this session." in prep.why.text)
        assert prep.begin.disabled
    finally:
        u.close()
