"""The DEMO program is written by the device, so its program, block and channel names
follow the patient's language; a clinician's own labels stay as written. Real Kivy widgets
under Xvfb on the simulated board."""
from __future__ import annotations

import os

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uitools import texts  # noqa: E402
from tests.uikit import ui  # noqa: E402,F401  (a fixture)

pytestmark = pytest.mark.kivy


def test_the_demo_speaks_swedish_when_the_patient_does_and_english_again_after(ui):
    home = ui.app.screens["home"]
    ui.app.load_demo()
    ui.pump(0.1)
    assert any("warm-up + quadriceps strength" in t for t in texts(home))
    issued = ui.svc.rx.issued

    ui.tap(home.lang_button)                                   # Svenska
    shown = texts(home)
    assert any("uppvärmning + quadricepsstyrka" in t for t in shown), shown
    assert any("vänster quadriceps, höger quadriceps" in t for t in shown), shown
    assert not any("warm-up" in t or "left quadriceps" in t for t in shown)
    assert ui.svc.rx_demo and ui.svc.rx.issued == issued       # the same DEMO, relabelled

    ui.tap(home.start)                                         # Förbered: the pictures still find the thigh
    prep = ui.app.screens["prepare"]
    assert any("vänster quadriceps" in t for t in texts(prep))
    assert any("lår" in t.lower() for t in texts(prep)), texts(prep)
    ui.tap(ui.screen.header_buttons.children[0])               # Avbryt

    ui.tap(home.lang_button)                                   # English again
    assert any("warm-up + quadriceps strength" in t for t in texts(home))


def test_a_clinicians_own_labels_stay_as_written_in_swedish(ui):
    home = ui.app.screens["home"]
    before = [b.label for b in ui.svc.rx.blocks] + [c.label for c in ui.svc.rx.channels]
    ui.tap(home.lang_button)
    assert "STARTA" in texts(home)
    assert [b.label for b in ui.svc.rx.blocks] + [c.label for c in ui.svc.rx.channels] == before
    assert any(" + ".join(before[:len(ui.svc.rx.blocks)]) in t for t in texts(home))
