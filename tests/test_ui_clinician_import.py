"""Clinic mode's prescription import on the touchscreen: a file touched is shown for
checking (blocks, caps, dates, who signed it) and installed only when confirmed; the
file list's rows are whole touch targets and a message never takes the list's room.

Real Kivy widgets under Xvfb at the device's 800 x 480 (with the simulated board's
trainer panel above, the tightest case), the simulated board, a real SQLite log.
With HOMEAPP_SHOTS=DIR the screens are saved there (EN and SV)."""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uitools import shots, texts, write_rx  # noqa: E402
from tests.uikit import ui  # noqa: E402,F401  (ui is a fixture)

pytestmark = pytest.mark.kivy


@pytest.fixture
def small(ui):
    """The app in the device's 800 x 480 window."""
    size = ui.window.size
    ui.window.size = (800, 480)
    ui.pump(0.1)
    yield ui
    ui.window.size = size


def _clinic(u, stick):
    u.tap(u.app.screens["home"].header_buttons.children[0])     # Clinic (rightmost)
    clin = u.app.screens["clinician"]
    for k in ("0", "0", "0", "0", "ok"):                        # simulated board, no PIN set
        u.tap(clin.pad.buttons[k])
    assert clin.unlocked
    clin.extra_dirs = [str(stick)]
    clin.refresh()
    u.pump(0.1)
    return clin


def _file(clin, name):
    return {b.text.rsplit("/", 1)[-1]: b for b in clin.file_buttons}[name]


def _window_rect(w):
    x, y = w.to_window(*w.pos)
    return x, y, x + w.width, y + w.height


def test_an_import_is_shown_for_checking_and_installed_only_when_confirmed(small, tmp_path):
    from schedules.signing import generate_keypair, key_id, save_public_key, sign_prescription
    u = small
    stick = tmp_path / "stick"
    today = dt.date.today()
    start = today + dt.timedelta(days=3)
    path = write_rx(stick, id="rx-new-0005", issued=today.isoformat(), valid_from=start.isoformat(),
                    min_hours_between=2, supervision="caregiver")
    private, public = generate_keypair()
    path.write_text(json.dumps(sign_prescription(json.loads(path.read_text()), private)))
    save_public_key(stick / "dr-berg.pub", public)
    clin = _clinic(u, stick)
    u.tap(next(b for b in clin.file_buttons if b.text.startswith("Trust the clinician key")))

    u.tap(_file(clin, "rx-new-0005.json"))
    assert u.svc.rx.id == "rx-ui-test", "a touch on a file installed it without asking"
    expires = json.loads(path.read_text())["expires"]
    assert clin.preview_lines == [
        "Prescription rx-new-0005",
        f"Signed by dr-berg (key {key_id(public)[:9]}…), verified",
        "Patient P-UI, clinician C-UI",
        f"Valid from {start.isoformat()} to {expires} (issued {today.isoformat()})",
        "5 sessions a week, at most 3 a day",
        "At least 2 hours between sessions",
        "A caregiver must unlock each session.",
        "Channel 1: left quadriceps, at most 6 mA",
        "Channel 2: right quadriceps, at most 5 mA",
        "Block 1: strength, 0.5 min, 50 Hz, 300 µs, 3 s on, 2 s rest",
    ]
    assert "\n".join(t.text for t in clin.preview_texts).splitlines() == clin.preview_lines   # all shown
    assert "Check before installing: rx-new-0005.json" in texts(clin)
    shots(u, "clinician-import-check")

    u.tap(clin.cancel_button)                                   # not this one
    assert u.svc.rx.id == "rx-ui-test"
    assert _file(clin, "rx-new-0005.json").get_root_window() is not None   # the list is back

    u.tap(_file(clin, "rx-new-0005.json"))
    u.tap(clin.install_button)                                  # checked: install it
    assert u.svc.rx.id == "rx-new-0005"
    assert clin.message.text == "Imported rx-new-0005."
    assert clin.preview is None and _file(clin, "rx-new-0005.json").get_root_window() is not None


def test_a_file_that_fails_validation_shows_each_problem_and_cannot_be_installed(small, tmp_path):
    u = small
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "bad.json").write_text(json.dumps({"format": "homeapp.prescription/1", "id": "x", "blocks": []}))
    clin = _clinic(u, stick)
    u.tap(_file(clin, "bad.json"))
    lines = clin.preview_lines
    assert lines[0] == "Refused:" and any("patient_id" in line for line in lines[1:])
    assert clin.install_button is None
    u.tap(clin.cancel_button)                                   # Back
    assert u.svc.rx.id == "rx-ui-test"


def test_file_rows_are_whole_and_a_message_never_covers_the_list(small, tmp_path):
    u = small
    stick = tmp_path / "stick"
    for n in range(3):
        write_rx(stick, id=f"rx-new-000{n}")
    clin = _clinic(u, stick)

    lx, ly, rx_, ry = _window_rect(clin.file_list)
    assert ry - ly >= 2 * 60, f"the list shows {ry - ly:.0f} px: less than two whole rows"
    for b in clin.file_buttons:
        assert b.height >= 60
    first_two = clin.file_buttons[:2]
    for b in first_two:                                         # whole rows, not halves
        bx, by, bx2, by2 = _window_rect(b)
        assert ly <= by and by2 <= ry, "a row is cut by the list's edge"

    u.tap(_file(clin, "rx-new-0001.json"))
    (stick / "rx-new-0001.json").write_text("{")   # the stick changed after the check
    u.tap(clin.install_button)
    assert u.svc.rx.id == "rx-ui-test"
    assert clin.message.text.startswith("Refused:")
    u.pump(0.1)
    mx, my, mx2, my2 = _window_rect(clin.message)
    lx, ly, lx2, ly2 = _window_rect(clin.file_list)
    assert mx2 <= lx or lx2 <= mx or my2 <= ly or ly2 <= my, "the message covers the list"
    assert ly2 - ly >= 2 * 60
    shots(u, "clinician-import-refused")
