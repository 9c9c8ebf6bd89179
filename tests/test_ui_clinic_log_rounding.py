"""The clinic log on the touchscreen shows a session's peaks in whole mA, as the patient
saw them on the session screen, while the log itself keeps the board's full precision.
A real session on the simulated board, real touches, real SQLite log, under Xvfb."""
from __future__ import annotations

import os

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uitools import texts  # noqa: E402
from tests.uikit import ui  # noqa: E402,F401  (a fixture)

pytestmark = pytest.mark.kivy


def test_clinic_log_peaks_read_as_the_patient_saw_them(ui):
    ui.start_session()
    sess = ui.screen
    ui.wait_until(lambda: ui.state.phase.value == "running")
    for _ in range(4):
        ui.tap(sess.controls[0].plus)
    for _ in range(3):
        ui.tap(sess.controls[1].plus)
    ui.wait_until(lambda: [c.target_ma for c in ui.state.channels] == [4.0, 3.0], what="4 and 3 mA")
    ui.wait_until(lambda: [c.ma.text for c in sess.controls] == ["4", "3"], what="4 and 3 on screen")
    ui.wait_until(lambda: ui.state.channels[1].contractions_done >= 1, timeout=15, what="a contraction at 4/3 mA")
    ui.tap(sess.stop_button)
    ui.wait_until(lambda: ui.app.current == "after", what="After screen")
    ui.app.skip_report()
    ui.pump(0.2)

    logged = ui.device.store.export()["sessions"][-1]["channels"]
    peaks = [c["peak_ma"] for c in logged]
    assert [round(p) for p in peaks] == [4, 3]

    ui.tap(ui.app.screens["home"].header_buttons.children[0])     # Clinic
    clin = ui.app.screens["clinician"]
    for k in ("0", "0", "0", "0", "ok"):
        ui.tap(clin.pad.buttons[k])
    clin.show_tab("log")
    ui.pump(0.1)
    shown = "\n".join(texts(clin))
    assert "peak 4/3 mA" in shown, shown
    for p in peaks:
        if not float(p).is_integer():      # the board's own figure never reaches the screen
            assert f"{p:g}" not in shown
