"""Clinic mode on the touchscreen: a clinician's key is removed (two touches), the removal
is logged, and the prescription it signed is refused from the next start, with the reason.

Real Kivy widgets under Xvfb, the simulated board, a real SQLite log."""
from __future__ import annotations

import json
import os

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uitools import write_rx  # noqa: E402
from tests.uikit import ui  # noqa: E402,F401  (a fixture)

pytestmark = pytest.mark.kivy


def test_clinician_removes_a_key_and_its_prescription_is_refused_at_the_next_start(ui, tmp_path):
    from schedules.signing import generate_keypair, save_public_key, sign_prescription

    ui.tap(ui.app.screens["home"].header_buttons.children[0])   # Clinic (rightmost)
    clin = ui.app.screens["clinician"]
    for k in ("0", "0", "0", "0", "ok"):
        ui.tap(clin.pad.buttons[k])
    stick = tmp_path / "stick"
    write_rx(stick, id="rx-signed-0004")
    private, public = generate_keypair()
    rx_path = stick / "rx-signed-0004.json"
    rx_path.write_text(json.dumps(sign_prescription(json.loads(rx_path.read_text()), private)))
    save_public_key(stick / "dr-berg.pub", public)
    clin.extra_dirs = [str(stick)]
    clin.refresh()
    ui.pump(0.1)
    ui.tap(next(b for b in clin.file_buttons if b.text.startswith("Trust the clinician key")))
    ui.tap({b.text.rsplit("/", 1)[-1]: b for b in clin.file_buttons}["rx-signed-0004.json"])
    ui.tap(clin.install_button)                 # after checking the summary
    assert ui.svc.signature_problem(ui.svc.rx) is None

    remove = [b for b in clin.file_buttons if b.text.startswith("Stop trusting dr-berg")]
    assert len(remove) == 1
    remove[0].parent.parent.scroll_to(remove[0], padding=0, animate=False)   # the list scrolls
    ui.pump(0.1)
    ui.tap(remove[0])                       # the first touch only asks
    assert remove[0].text == "Touch again to stop trusting dr-berg"
    assert ui.svc.trusted_keys() != {}
    ui.pump(0.1)
    if os.environ.get("HOMEAPP_SHOTS"):     # the screenshot looked at for the report
        ui.window.screenshot(os.path.join(os.environ["HOMEAPP_SHOTS"], "clinician-untrust-confirm-en.png"))
    ui.tap(remove[0])
    assert ui.svc.trusted_keys() == {}
    assert clin.message.text.endswith("(dr-berg) is no longer trusted.")
    if os.environ.get("HOMEAPP_SHOTS"):
        ui.pump(0.1)
        ui.window.screenshot(os.path.join(os.environ["HOMEAPP_SHOTS"], "clinician-untrust-done-en.png"))
    (event,) = [e for e in ui.device.store.device_events() if e["kind"] == "trust_removed"]
    assert event["detail"]["label"] == "dr-berg" and event["detail"]["by"] == "clinician mode"
    # the card says why the prescription is no longer accepted
    assert ui.svc.signature_problem(ui.svc.rx).startswith("signed by a removed key")
    assert any("signed by a key that was removed from this device" in w.text
               for w in clin.walk() if hasattr(w, "text") and isinstance(w.text, str))


def test_the_key_list_follows_a_trust_and_a_removal_that_change_nothing_else(ui, tmp_path):
    """Trusting or removing a key that signed nothing shown changes only the list of keys:
    the tab must still show it (it is rebuilt when anything it shows changed)."""
    from schedules.signing import generate_keypair, save_public_key

    ui.tap(ui.app.screens["home"].header_buttons.children[0])   # Clinic (rightmost)
    clin = ui.app.screens["clinician"]
    for k in ("0", "0", "0", "0", "ok"):
        ui.tap(clin.pad.buttons[k])
    stick = tmp_path / "stick"
    stick.mkdir()
    save_public_key(stick / "dr-lind.pub", generate_keypair()[1])
    clin.extra_dirs = [str(stick)]
    clin.refresh()
    ui.pump(0.1)

    def removers():
        return [b for b in clin.file_buttons if b.text.startswith("Stop trusting dr-lind")]

    assert removers() == []
    ui.tap(next(b for b in clin.file_buttons if b.text.startswith("Trust the clinician key")))
    assert len(removers()) == 1
    (remove,) = removers()
    remove.parent.parent.scroll_to(remove, padding=0, animate=False)   # the list scrolls
    ui.pump(0.1)
    ui.tap(remove)                            # the first touch only asks
    ui.tap(remove)
    assert ui.svc.trusted_keys() == {}
    assert removers() == []
