"""The session-time screens as a patient meets them on the simulated board: the After
summary and its questions, the e-stop and electrode alerts, the way back after a pause,
press-and-hold on +, the block header and the Adjust view's cue.

Real Kivy widgets under Xvfb; touches go through the window; the engine runs on the held
clock (virtual time); the assertions read the screen and the log."""
from __future__ import annotations

import os
import re

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uitools import SHORT_RX, UI, texts  # noqa: E402
from tests.uikit import events, ui  # noqa: E402,F401  (ui is a fixture)

pytestmark = pytest.mark.kivy


def window_rect(w):
    x, y = w.to_window(w.x, w.y)
    return x, y, x + w.width, y + w.height


def overlaps(a, b) -> bool:
    ax0, ay0, ax1, ay1 = window_rect(a)
    bx0, by0, bx1, by1 = window_rect(b)
    return ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1


def needed_height(label) -> float:
    """The height a label's text needs at its width (wrapped, nothing cut)."""
    from kivy.core.text import Label as CoreLabel
    core = CoreLabel(text=label.text, font_size=label.font_size, bold=label.bold,
                     text_size=(label.width, None), padding=label.padding)
    core.refresh()
    return core.content_height


def raise_to(ui, channel: int, ma: float) -> None:
    sess = ui.screen
    while ui.state.channels[channel].target_ma < ma:
        before = ui.state.channels[channel].target_ma
        ui.tap(sess.controls[channel].plus)
        ui.wait_until(lambda: ui.state.channels[channel].target_ma > before, what="one step up")


def test_estop_ok_waits_for_the_release_and_after_says_it_per_channel(ui):
    tp = ui.app.trainer
    ui.start_session()
    ui.wait_until(lambda: ui.state.phase.value == "running")
    raise_to(ui, 0, 2)
    ui.wait_until(lambda: ui.state.channels[0].contractions_done >= 2, timeout=30, what="two contractions")
    ui.tap(tp.estop)                                     # press the e-stop
    ui.wait_until(lambda: ui.app.overlay.showing and ui.app.overlay.alert.kind.value == "estop")
    shown = texts(ui.app.overlay)
    assert not any("e-stop pressed" in t for t in shown), shown   # the log's line, not the patient's
    ui.tap(ui.app.overlay.ok)                            # too early: the button is still pressed
    ui.wait_until(lambda: "still pressed" in ui.app.overlay.hint.text, what="the too-early hint")
    assert ui.app.overlay.showing and ui.app.current == "session"
    assert "Turn it to release it, then touch OK" in ui.app.overlay.hint.text
    assert [e for e in events(ui, "refused") if e["detail"].get("what") == "acknowledge"]
    ui.tap(tp.estop)                                     # release it
    ui.tap(ui.app.overlay.ok)
    ui.wait_until(lambda: ui.app.current == "after", what="After screen")
    lines = ui.screen.summary.text.split("\n")
    logged = ui.device.store.session(ui.state.session_id)["channels"]
    from homeapp.ui.after import duration_text
    planned = duration_text(ui.state.total_s)
    assert re.fullmatch(r"Session ended by a safety stop: (\d+ min )?\d+ s of " + planned, lines[0]), lines
    assert lines[0] != "Session ended by a safety stop: 0 s of 25 s", "stimulation time was done"
    assert lines[1] == f"left quadriceps: {logged[0]['contractions']} of 6 contractions, up to 2 mA"
    assert lines[2] == f"right quadriceps: {logged[1]['contractions']} of 6 contractions, up to 0 mA"
    assert logged[0]["contractions"] >= 1
    assert "Borg" not in " ".join(texts(ui.screen)) and " / " not in ui.screen.summary.text


def test_after_save_is_clear_says_what_is_missing_and_skip_logs_not_answered(ui):
    ui.start_session()
    ui.wait_until(lambda: ui.state.phase.value == "running")
    ui.tap(ui.screen.stop_button)
    ui.wait_until(lambda: ui.app.current == "after", what="After screen")
    after = ui.screen
    ui.pump(0.2)
    for w in (after.save, after.skip):
        assert not overlaps(w, after.summary_card), "the summary box covers a button"
        x0, y0, x1, y1 = window_rect(w)
        assert x0 >= 0 and y0 >= 0 and x1 <= ui.window.width and y1 <= ui.window.height
    # Every line of the summary fits in its box.
    assert after.summary.texture_size[1] <= after.summary_card.height
    ui.tap(after.pain.buttons[3])
    ui.tap(after.save)                                   # effort not chosen yet
    assert ui.app.current == "after"
    assert after.effort_label.text.startswith("Choose a number:")
    assert not after.pain_label.text.startswith("Choose")
    size = tuple(ui.window.size)
    try:                                                 # nothing cut, in either language, at 800x480
        ui.window.size = (800, 480)
        for lang in ("en", "sv"):
            ui.app.set_language(lang)
            after.refresh()
            ui.pump(0.2)
            assert after.width <= 800
            for label in (after.pain_label, after.effort_label, after.summary):
                assert needed_height(label) <= label.height + 1, (lang, label.text)
            assert after.summary_card.height >= after.summary.height
    finally:
        ui.app.set_language("en")
        ui.window.size = size
        ui.pump(0.1)
    sid = ui.state.session_id
    ui.tap(after.skip)
    assert ui.app.current == "home"
    ui.wait_until(lambda: any(e["kind"] == "report_skipped"
                              for e in ui.device.store.session(sid)["events"]), what="the skip in the log")
    skipped = [e for e in ui.device.store.session(sid)["events"] if e["kind"] == "report_skipped"]
    assert skipped[0]["detail"]["answered"] is False
    assert ui.device.store.export()["sessions"][-1]["report"] is None


def test_electrode_loose_says_what_to_do_and_the_way_back_is_the_next_touch(ui):
    tp = ui.app.trainer
    ui.start_session()
    sess = ui.screen
    ui.wait_until(lambda: ui.state.phase.value == "running")
    raise_to(ui, 0, 3)
    ui.tap(tp.lead_buttons[1])                           # electrode 2 comes loose
    ui.wait_until(lambda: ui.app.overlay.showing, what="electrode alert")
    ov = ui.app.overlay
    shown = texts(ov)
    assert not any("sense" in t or "counts" in t for t in shown), shown   # no technical line
    assert ov.wait_continue.get_root_window() is not None and ov.wait_continue.disabled
    assert ov.wait_continue.text == "Continue"
    assert ov.hint.text == "Continue works again when the pad has contact."
    assert "0 of 0" not in sess.block.text and "strength" in sess.block.text, sess.block.text
    ui.tap(tp.lead_buttons[1])                           # back on
    ui.wait_until(lambda: not ov.showing, what="alert cleared")
    ui.pump(0.1)
    assert "0 of 0" not in sess.block.text and sess.block.text.startswith("Block 1 of 1: strength")
    assert "After Continue, one touch brings it back." in sess.controls[0].note.text
    ui.tap(sess.pause_button)                            # Continue
    ui.wait_until(lambda: ui.state.phase.value == "running")
    restore = sess.controls[0].restore
    ui.wait_until(lambda: restore.get_root_window() is not None, what="Back to 3 mA")
    assert restore.text == "Back to 3 mA" and restore.height >= 72 and restore.font_size >= 28
    from homeapp.ui.widgets import Theme
    assert restore.bg == Theme.go and sess.controls[0].plus.bg != Theme.primary   # green stands out
    ui.tap(restore)
    ui.wait_until(lambda: ui.state.channels[0].target_ma == 3.0, what="back at 3 mA")


def test_holding_plus_repeats_at_the_allowed_rise_rate_and_stops_at_the_cap(ui):
    from kivy.tests.common import UnitTestTouch

    from homeapp.ui.session import ChannelControl
    from schedules.limits import INTENSITY_RISE_MA_PER_S, INTENSITY_STEP_MA
    assert ChannelControl.HOLD_REPEAT_S == pytest.approx(INTENSITY_STEP_MA / INTENSITY_RISE_MA_PER_S)
    ui.start_session()
    sess = ui.screen
    ui.wait_until(lambda: ui.state.phase.value == "running")
    ui.pump(0.1)
    plus = sess.controls[0].plus
    x, y = plus.to_window(*plus.center)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    shown = set()
    ui.wait_until(lambda: (shown.add(sess.controls[0].ma.text) or ui.state.channels[0].target_ma >= 3),
                  timeout=5, what="3 mA by holding +")
    touch.touch_up()
    ui.pump(0.6)
    asked = [e["detail"]["ma"] for e in events(ui, "intensity")]
    assert asked[:3] == [1.0, 2.0, 3.0]
    held_until = len(asked)
    ui.pump(0.6)
    assert len([e for e in events(ui, "intensity")]) == held_until, "kept rising after the finger lifted"
    assert {"1", "2"} <= shown, shown                    # each step was on screen
    # Held again to the clinic's cap (6 mA): it stops there and says why.
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    ui.wait_until(lambda: ui.state.channels[0].target_ma == 6.0, timeout=5, what="the cap")
    ui.pump(1.0)
    touch.touch_up()
    ui.pump(0.1)
    assert ui.state.channels[0].target_ma == 6.0
    assert "6 mA is the most your clinic allows." in sess.controls[0].note.text
    refused = [e for e in events(ui, "refused") if e["detail"].get("what") == "intensity"]
    assert 1 <= len(refused) <= 2, "holding at the cap must not keep asking"


def test_adjust_keeps_the_cue_and_says_which_block_runs_now(tmp_path):
    first = dict(SHORT_RX["blocks"][0], label="warm-up")
    second = dict(SHORT_RX["blocks"][0], label="strength", off_s={"value": 2, "min": 2, "max": 4})
    u = UI(tmp_path, rx_changes={"blocks": [first, second]})
    try:
        u.start_session()
        sess = u.screen
        u.wait_until(lambda: u.state.phase.value == "running")
        u.wait_until(lambda: sess.adjust_button.get_root_window() is not None, what="Adjust")
        u.tap(sess.adjust_button)
        view = sess.adjust_view
        assert u.state.block_index == 0
        row = view.rows[0]
        assert (row.block_index, row.param) == (1, "off_s")
        u.pump(0.1)
        assert row.where.text == "Later, block 2: strength"
        for want in ("CONTRACT", "REST"):
            u.wait_until(lambda: view.cue_phase.text == want, timeout=10, what=want)
            assert view.cue_phase.get_root_window() is not None
            assert view.cue.bg == (sess.phase_card.bg)
            assert view.cue_count.text.isdigit()
            assert view.cue_phase.text == sess.phase.text
    finally:
        u.close()


def test_a_held_plus_asks_at_the_engines_rate_in_session_time_and_stops_at_the_release(ui):
    """In the session's own (held, virtual) time: each step is asked for only once the board
    gives the last one, so the asks are a step's rise time apart and the screen never runs
    more than one step ahead of the current; lifting the finger stops them at once."""
    from kivy.tests.common import UnitTestTouch

    from homeapp.ui.session import ChannelControl
    from schedules.limits import INTENSITY_RISE_MA_PER_S, INTENSITY_STEP_MA
    step_s = INTENSITY_STEP_MA / INTENSITY_RISE_MA_PER_S
    ui.start_session()
    sess = ui.screen
    ui.wait_until(lambda: ui.state.phase.value == "running")
    ui.pump(0.1)
    plus = sess.controls[0].plus
    touch = UnitTestTouch(*plus.to_window(*plus.center))
    touch.touch_down()
    ahead, shown = [], []
    try:
        def watch():
            ch = ui.state.channels[0]
            ahead.append(ch.target_ma - ch.set_ma)
            shown.append(sess.controls[0].ma.text)
            return ch.target_ma >= 5
        ui.wait_until(watch, timeout=15, what="5 mA by holding +")
    finally:
        touch.touch_up()
    lifted_at = ui.clock.now()
    ui.pump(0.5)
    shown.append(sess.controls[0].ma.text)
    asks = [e for e in events(ui, "intensity") if e["detail"].get("channel", 0) == 0]
    assert [e["detail"]["ma"] for e in asks][:5] == [1.0, 2.0, 3.0, 4.0, 5.0]
    gaps = [b["t"] - a["t"] for a, b in zip(asks, asks[1:])]
    assert min(gaps) >= step_s - 0.02, gaps             # never faster than the engine's rate
    # never more than a step ahead of the board (which sets whole DAC steps of 0.024 mA)
    assert max(ahead) <= INTENSITY_STEP_MA + ChannelControl.REACHED_MA, max(ahead)
    assert {"1", "2", "3", "4", "5"} <= set(shown), shown        # each step was on the screen
    assert len(asks) <= 6, "kept asking after the finger lifted"
    assert ui.state.channels[0].target_ma <= 6.0 and ui.clock.now() > lifted_at

