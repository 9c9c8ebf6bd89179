"""The app as the device factory wires it: the trainer's panel shows the simulated board
as it is, and with no display the screen can be looked at (a picture written every few
seconds). Real Kivy widgets under Xvfb, the simulated board, a real SQLite log."""
from __future__ import annotations

import os
import struct

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uitools import UI, texts  # noqa: E402

pytestmark = pytest.mark.kivy


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_the_trainer_panel_says_what_the_simulated_board_has(tmp_path):
    ui = UI(tmp_path)
    try:
        panel = ui.app.trainer
        assert panel is not None
        ui.tap(panel.estop)
        assert ui.device.sim_board.estop_pressed
        assert panel.estop.text == "Release e-stop"
        # the board changes by another hand (an actions file, a second panel): the panel follows
        ui.device.hands.release_estop()
        ui.device.hands.set_lead(1, False)
        panel.refresh()
        assert panel.estop.text == "Press e-stop"
        assert "Reattach electrode 2" in texts(panel)
        ui.tap(panel.lead_buttons[1])
        assert ui.device.sim_board.lead_connected(1) and "Detach electrode 2" in texts(panel)
    finally:
        ui.close()


def test_with_a_picture_path_the_app_writes_its_screen_every_few_seconds(tmp_path, monkeypatch):
    from homeapp.ui import app as app_module

    picture = tmp_path / "screen.png"
    monkeypatch.setenv(app_module.SCREEN_PICTURE_ENV, str(picture))
    monkeypatch.setattr(app_module, "SCREEN_PICTURE_EVERY_S", 0.3)
    ui = UI(tmp_path)
    try:
        ui.wait_until(picture.exists, timeout=10, what="the screen picture")
        # the window's own size (the app alone opens it at 800 x 480; the tests share one)
        assert png_size(picture) == tuple(int(v) for v in ui.window.size)
        first = picture.stat().st_mtime_ns
        ui.wait_until(lambda: picture.stat().st_mtime_ns != first, timeout=10, what="a newer picture")
        assert not list(tmp_path.glob("screen.png.tmp*"))      # replaced whole, nothing left over
    finally:
        ui.close()
