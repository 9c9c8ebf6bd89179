"""Nothing a patient needs is cut off, on the screens of a session's way (Preparation with
its caregiver PIN pop-up, the session, an electrode alert, After, History), at the
device's 800 x 480, with and without the simulated board's trainer panel, in English and
Swedish.

Real Kivy widgets under Xvfb, the app on the simulated board; tests/uifit.py lays every
label's text out again to see whether its box holds all of it."""
from __future__ import annotations

import os

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uitools import UI  # noqa: E402
from tests.uifit import inside, problems, rect  # noqa: E402

pytestmark = pytest.mark.kivy

LANGS = ("en", "sv")


@pytest.fixture(params=[True, False], ids=["with-panel", "without-panel"])
def small_ui(request, tmp_path):
    """The app at the device's 800 x 480, with or without the trainer's panel."""
    # Two-digit caps: "max 60 mA" must fit beside the channel's name too.
    channels = [{"label": "left quadriceps", "max_ma": 60}, {"label": "right quadriceps", "max_ma": 40}]
    u = UI(tmp_path, config_extra={"device": {"show_trainer_panel": request.param}},
           rx_changes={"channels": channels})
    size = tuple(u.window.size)
    u.window.size = (800, 480)
    u.pump(0.2)
    assert (u.app.trainer is not None) == request.param
    yield u
    u.app.set_language("en")
    u.window.size = size
    u.close()


def check(ui, root, where: str, skip=()) -> list[str]:
    ui.pump(0.15)
    return [f"{where}: {p}" for p in problems(root, ui.window, skip=skip)]


def in_both_languages(ui, where: str, root_of, redo=None) -> list[str]:
    found = []
    for lang in LANGS:
        ui.app.set_language(lang)
        if redo is not None:
            redo()
        found += check(ui, root_of(), f"{where} [{lang}]")
    ui.app.set_language("en")
    return found


def test_preparation_shows_every_word_and_the_whole_picture(small_ui):
    ui = small_ui
    ui.tap(ui.app.screens["home"].start)
    prep = ui.app.screens["prepare"]
    ui.wait_until(lambda: prep.contacts is not None, what="contact poll")
    found = in_both_languages(ui, "Preparation", lambda: ui.app.root_widget)
    ui.tap(prep.skin)
    found += in_both_languages(ui, "Preparation, skin checked", lambda: ui.app.root_widget)
    win = (0, 0, ui.window.width, ui.window.height)
    for card in prep.cards:
        pic = card.picture
        assert inside(rect(pic), win) and inside(rect(pic), rect(card)), "the picture is cropped"
        assert pic.height >= 120 and pic.width >= 100, f"the picture is {pic.size}"
        x0, y0, x1, y1 = pic.drawn_rect()
        assert pic.x - 1 <= x0 and x1 <= pic.right + 1 and pic.y - 1 <= y0 and y1 <= pic.top + 1
        for tag in pic._tags:
            assert inside(rect(tag), rect(pic)), "a pad's number is off the picture"
    # The caregiver's PIN pop-up: every key whole, none under Cancel.
    prep.ask_pin()
    found += in_both_languages(ui, "PIN pop-up", lambda: prep.pin_view,
                               redo=lambda: (prep.pin_view.dismiss(), prep.ask_pin()))
    assert not found, "\n".join(found)


def test_the_session_an_alert_after_and_history_show_every_word(small_ui):
    ui = small_ui
    ui.start_session()
    sess = ui.screen
    ui.wait_until(lambda: ui.state.phase.value == "running")
    found = in_both_languages(ui, "Session", lambda: sess)
    ui.tap(sess.pause_button)
    ui.wait_until(lambda: ui.state.phase.value == "paused")
    found += in_both_languages(ui, "Session, paused", lambda: sess)
    ui.tap(sess.pause_button)
    ui.wait_until(lambda: ui.state.phase.value == "running")
    ui.device.sim_board.set_lead(1, False)                      # electrode 2 comes loose
    ui.wait_until(lambda: ui.app.overlay.showing, what="electrode alert")
    found += in_both_languages(ui, "Electrode alert", lambda: ui.app.overlay)
    ui.device.sim_board.set_lead(1, True)
    ui.wait_until(lambda: not ui.app.overlay.showing, what="alert cleared")
    ui.tap(sess.stop_button)
    ui.wait_until(lambda: ui.app.current == "after", what="After")
    found += in_both_languages(ui, "After", lambda: ui.app.root_widget)
    ui.app.skip_report()
    ui.pump(0.1)
    ui.app.go("history")
    # A month of five weeks, whatever today is: under the trainer's panel a six-week month's
    # day cells are 51 px (tests/test_ui_history.py judges every month's cells).
    hist = ui.app.screens["history"]
    hist.month = (2026, 12)
    hist.refresh()
    found += in_both_languages(ui, "History", lambda: ui.app.root_widget)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("panel", [True, False], ids=["with-panel", "without-panel"])
def test_adjust_and_the_estop_alert_show_every_word(tmp_path, panel):
    from tests.uitools import SHORT_RX
    block = dict(SHORT_RX["blocks"][0], off_s={"value": 2, "min": 2, "max": 4},
                 pulse_us={"value": 300, "min": 250, "max": 400})
    u = UI(tmp_path, config_extra={"device": {"show_trainer_panel": panel}}, rx_changes={"blocks": [block]})
    size = tuple(u.window.size)
    try:
        u.window.size = (800, 480)
        u.start_session()
        sess = u.screen
        u.wait_until(lambda: u.state.phase.value == "running")
        u.wait_until(lambda: sess.adjust_button.get_root_window() is not None, what="Adjust")
        u.tap(sess.adjust_button)
        found = in_both_languages(u, "Adjust", lambda: sess.adjust_view)
        sess.close_adjust()
        u.device.sim_board.press_estop()
        u.wait_until(lambda: u.app.overlay.showing, what="e-stop alert")
        found += in_both_languages(u, "E-stop alert", lambda: u.app.overlay)
        u.device.sim_board.release_estop()
        assert not found, "\n".join(found)
    finally:
        u.app.set_language("en")
        u.window.size = size
        u.close()
