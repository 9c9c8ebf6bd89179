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
from homeapp.ui.testing import UI, texts, write_rx  # noqa: E402
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
        lockouts = [e for e in second.svc.store.device_events() if e["kind"] == "pin_lockout"]
        assert [e["detail"]["role"] for e in lockouts] == ["caregiver"]
    finally:
        second.close()
