"""The app reacts to the e-stop button the moment it goes down, not at its engine's next
tick: the one factory (`Device.new_engine`) connects the driver's e-stop callback to every
engine it builds, as `session run` has it in real time.

The real app on the simulated board (real driver, real gpiozero callback from the
simulated pigpiod), under Xvfb, its engine on the held clock: while the test draws no
frame the clock stands still, so the engine's loop cannot reach another tick and only
the callback can end the session."""
from __future__ import annotations

import os
import time

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uikit import events, ui  # noqa: E402,F401  (ui is a fixture)

pytestmark = pytest.mark.kivy


def test_the_estop_button_aborts_the_apps_session_at_once_without_an_engine_tick(ui):
    ui.start_session()
    ui.wait_until(lambda: ui.state.phase.value == "running", what="running")
    ui.wait_until(lambda: ui.state.contracting, timeout=15, what="a contraction")
    engine = ui.app.engine
    held_at = ui.clock.now()
    ui.svc.trainer_hands.press_estop()      # the button on the board: no touch, no frame drawn
    deadline = time.monotonic() + 10        # real seconds: a loaded machine, never the clock
    while engine.state.phase.value != "aborted" and time.monotonic() < deadline:
        time.sleep(0.002)
    assert engine.state.phase.value == "aborted", (
        f"the press was not acted on while the clock stood still ({engine.state.phase.value})")
    assert ui.clock.now() == held_at        # not one engine tick, not one board tick passed
    assert engine.state.alert is not None and engine.state.alert.kind.value == "estop"
    estops = events(ui, "estop")
    assert [e["detail"]["source"] for e in estops] == ["button"]
    # logged at the instant of the press: the session's time had not moved on
    assert estops[0]["t"] == pytest.approx(held_at - engine.session_clock_start, abs=1e-6)
    ui.svc.trainer_hands.release_estop()

