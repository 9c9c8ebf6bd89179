"""The touchscreen on the simulated board: the whole patient flow by touches, the cap,
STOP during a contraction, the alerts, supervision, clinician import/export, languages.

Real Kivy widgets under Xvfb; touches go through the window (UnitTestTouch), the engine
runs in its own thread on the simulated pigpiod, and the assertions read the screen, the
log and the simulated board."""
from __future__ import annotations

import json
import os

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uitools import UI, texts, write_rx  # noqa: E402
from tests.uikit import events, ui  # noqa: E402,F401  (ui is a fixture)

pytestmark = pytest.mark.kivy


def test_patient_flow_home_to_after_lands_in_the_log(ui):
    home = ui.app.screens["home"]
    shown = texts(home)
    assert "START" in shown
    assert any("strength" in t for t in shown)
    assert any("This week: 0 of 5 sessions" in t for t in shown)

    ui.tap(home.start)
    prep = ui.app.screens["prepare"]
    assert ui.app.current == "prepare"
    ui.wait_until(lambda: prep.contacts == (True, True), what="contact on both channels")
    assert any("Contact good" in t for t in texts(prep))
    assert prep.begin.disabled                       # the skin check comes first
    ui.tap(prep.begin)
    assert ui.app.current == "prepare"
    ui.tap(prep.skin)
    ui.wait_until(lambda: not prep.begin.disabled)
    ui.tap(prep.begin)
    ui.wait_until(lambda: ui.app.current == "session")
    sess = ui.screen
    ui.wait_until(lambda: ui.state.phase.value == "running")

    for _ in range(3):
        ui.tap(sess.controls[0].plus)
    ui.wait_until(lambda: ui.state.channels[0].target_ma == 3.0, what="3 mA")
    ui.wait_until(lambda: sess.controls[0].ma.text == "3", what="3 mA on screen")
    assert any(t in ("CONTRACT", "REST") for t in texts(sess))

    ui.tap(sess.pause_button)
    ui.wait_until(lambda: ui.state.phase.value == "paused")
    ui.wait_until(lambda: "PAUSED" in texts(sess), what="PAUSED on screen")
    assert sess.pause_button.text == "Continue"
    assert ui.state.channels[0].target_ma == 0.0          # intensity zero after a pause
    ui.tap(sess.pause_button)
    ui.wait_until(lambda: ui.state.phase.value == "running")
    restore = sess.controls[0].restore
    ui.wait_until(lambda: restore.get_root_window() is not None, what="the back-to-level button")
    assert restore.get_root_window() is not None and restore.text == "Back to 3 mA"
    ui.tap(restore)
    ui.wait_until(lambda: ui.state.channels[0].target_ma == 3.0, what="restored to 3 mA")

    ui.tap(sess.stop_button)
    ui.wait_until(lambda: ui.app.current == "after", what="After screen")
    after = ui.screen
    assert any(t.startswith("Session stopped") for t in texts(after))
    logged = ui.device.store.session(ui.state.session_id)["channels"]
    # Per channel by its name, against the plan, never "x / y contractions".
    assert f"left quadriceps: {logged[0]['contractions']} of 6 contractions" in after.summary.text
    assert f"right quadriceps: {logged[1]['contractions']} of 6 contractions" in after.summary.text
    ui.tap(after.save)                                 # nothing chosen yet: stays
    assert ui.app.current == "after"
    ui.tap(after.pain.buttons[2])
    ui.tap(after.effort.buttons[0.5])
    after.comment.text = "knee felt fine"
    ui.tap(after.save)
    assert ui.app.current == "home"
    ui.wait_until(lambda: ui.device.store.export()["sessions"][-1]["report"] is not None,
                  what="the report in the log")

    s = ui.device.store.export()["sessions"][-1]
    assert s["status"] == "stopped"
    kinds = [e["kind"] for e in s["events"]]
    for k in ("intensity", "pause", "resume", "stop"):
        assert k in kinds, kinds
    assert [e["detail"]["ma"] for e in s["events"] if e["kind"] == "intensity"][:3] == [1.0, 2.0, 3.0]
    assert s["report"]["pain"] == 2 and s["report"]["effort"] == 0.5
    assert s["report"]["comment"] == "knee felt fine"
    assert any("Your last session ended early." in t for t in texts(ui.app.screens["home"]))

    # History: the session on the calendar and in the chart; Caregiver: behind the PIN.
    import datetime as dt
    home = ui.app.screens["home"]
    history_button = [b for b in home.header_buttons.children if b.text == "History"][0]
    ui.tap(history_button)
    hist = ui.screen
    assert ui.app.current == "history"
    today = dt.date.today()
    assert hist.month_label.text == f"{today.strftime('%B')} {today.year}"
    day_cells = [w for w in hist.calendar.children if getattr(w, "text", "") == str(today.day)]
    assert day_cells and day_cells[0].bold              # a session that day
    assert [len(s) for s in hist.chart.series] == [1, 1]
    ui.tap(hist.back_button)
    caregiver_button = [b for b in home.header_buttons.children if b.text == "Caregiver"][0]
    ui.tap(caregiver_button)
    care = ui.screen
    assert not care.unlocked and "Recent alerts" not in texts(care)
    for k in ("0", "0", "0", "0", "ok"):
        ui.tap(care.pad.buttons[k])
    assert care.unlocked and "Recent alerts" in texts(care)


def test_plus_stops_at_the_cap_and_says_why(ui):
    ui.start_session()
    sess = ui.screen
    ui.wait_until(lambda: ui.state.phase.value == "running")
    plus = sess.controls[1].plus                        # right quadriceps, cap 5 mA
    for _ in range(7):
        ui.tap(plus)
    ui.wait_until(lambda: ui.state.notice is not None and ui.state.notice.kind == "at_cap")
    ui.wait_until(lambda: sess.controls[1].note.text != "", what="the refusal on screen")
    assert ui.state.channels[1].target_ma == 5.0
    assert sess.controls[1].ma.text == "5"
    assert sess.controls[1].note.text == "5 mA is the most your clinic allows."
    assert sess.controls[0].note.text == ""
    refused = events(ui, "refused")
    assert refused and all(e["detail"]["channel"] == 1 for e in refused)
    assert refused[0]["detail"]["limit_ma"] == 5.0


def test_stop_during_a_contraction_ends_the_output(ui):
    board = ui.device.sim_board
    ui.start_session()
    sess = ui.screen
    for _ in range(4):
        ui.tap(sess.controls[0].plus)
    # A short sound at each contraction's start (asked for even where there is no audio device).
    ui.wait_until(lambda: ui.app.beeper.beeps >= 1, timeout=8, what="the contraction beep")
    # The screen says CONTRACT while the board delivers current: STOP now.
    ui.wait_until(lambda: sess.phase.text == "CONTRACT" and ui.state.contracting
                  and ui.state.channels[0].set_ma >= 2.0
                  and board.effective_enable() and board.amplitude_ma(0) > 0,
                  timeout=8, what="a contraction with current, on screen")
    t_tap = board.clock_us()
    ui.tap(sess.stop_button)
    ui.wait_until(lambda: not board.effective_enable(), timeout=1, what="the output off")
    t_off = board.clock_us()
    assert board.amplitude_ma(0) == 0 and board.amplitude_ma(1) == 0
    ui.pump(0.3)
    segments = board.trace().current_segments(0)
    assert segments, "current flowed before the stop"
    last_current = max(t1 for _t0, t1, _ma in segments)
    assert last_current <= t_off
    # STOP does not wait behind anything: the output is off well within 0.2 s of the touch.
    assert last_current - t_tap < 200_000, (last_current - t_tap)
    ui.wait_until(lambda: ui.app.current == "after")


def test_stop_acts_as_the_finger_lands_even_if_it_slides_off(ui):
    """A weak or shaky finger: STOP stops on touch-down; sliding off before lifting (which
    cancels an ordinary button) changes nothing."""
    from kivy.tests.common import UnitTestTouch
    ui.start_session()
    ui.wait_until(lambda: ui.state.phase.value == "running")
    stop = ui.screen.stop_button
    ui.pump(0.05)
    touch = UnitTestTouch(*stop.to_window(*stop.center))
    touch.touch_down()                                  # the finger lands and stays
    ui.wait_until(lambda: ui.state.phase.value == "stopped", what="stopped while the finger is down")
    assert not ui.device.sim_board.effective_enable()
    touch.touch_move(5, 5)                              # slides off the button
    touch.touch_up()
    ui.pump(0.1)                                        # the queued move and lift are handled here
    ui.wait_until(lambda: ui.app.current == "after", what="After screen")


def test_estop_and_electrode_loss_take_the_whole_screen(ui):
    assert ui.app.trainer is not None                   # simulated board: the trainer's panel
    tp = ui.app.trainer
    ui.start_session()
    ui.wait_until(lambda: ui.state.phase.value == "running")
    ui.tap(tp.lead_buttons[1])                          # detach electrode 2
    assert tp.leads == [True, False], "the touch did not reach the trainer's button"
    ui.wait_until(lambda: ui.app.overlay.showing, what="electrode alert")
    shown = texts(ui.app.overlay)
    assert "ELECTRODE LOOSE" in shown
    assert any("Channel 2 (right quadriceps) lost contact" in t for t in shown)
    assert ui.state.phase.value == "paused"
    # Whatever is under the alert takes no touch: the session's + is covered.
    ui.tap(ui.screen.controls[0].plus)
    assert ui.state.phase.value == "paused"
    assert [e for e in events(ui, "refused") if e["detail"].get("what") == "intensity"] == []
    ui.tap(tp.lead_buttons[1])                          # reattach
    ui.wait_until(lambda: not ui.app.overlay.showing, what="alert cleared")
    ui.tap(ui.screen.pause_button)                      # Continue
    ui.wait_until(lambda: ui.state.phase.value == "running")

    ui.tap(tp.estop)                                    # press the e-stop
    ui.wait_until(lambda: ui.app.overlay.showing and ui.app.overlay.alert.kind.value == "estop")
    assert not ui.device.sim_board.effective_enable()
    assert "EMERGENCY STOP" in texts(ui.app.overlay)
    assert ui.app.current == "session"                  # stays until acknowledged
    ui.tap(tp.estop)                                    # release it
    ui.tap(ui.app.overlay.ok)
    ui.wait_until(lambda: ui.app.current == "after")
    assert any("safety stop" in t for t in texts(ui.screen))
    kinds = [e["kind"] for e in events(ui)]
    assert "lead_off" in kinds and "lead_on" in kinds and "estop" in kinds
    assert ui.device.store.export()["sessions"][-1]["status"] == "aborted"


def test_a_supervised_session_needs_the_caregiver_pin(tmp_path):
    from homeapp.pinhash import hash_pin
    u = UI(tmp_path, config_extra={"security": {"caregiver_pin_hash": hash_pin("2468")}},
           rx_changes={"supervision": "caregiver"})
    try:
        u.tap(u.app.screens["home"].start)
        prep = u.app.screens["prepare"]
        u.wait_until(lambda: prep.contacts is not None)
        u.tap(prep.skin)
        u.wait_until(lambda: "A caregiver must unlock this session." in prep.why.text)
        assert prep.begin.disabled
        u.tap(prep.unlock)
        pad = prep.pin_view.pad
        for k in ("1", "1", "1", "1", "ok"):
            u.tap(pad.buttons[k])
        assert any("Wrong PIN" in t for t in texts(prep.pin_view))
        for k in ("2", "4", "6", "8", "ok"):
            u.tap(pad.buttons[k])
        u.wait_until(lambda: u.svc.caregiver_unlocked and prep.pin_view is None)
        u.wait_until(lambda: not prep.begin.disabled, what="Begin after the unlock")
        assert prep.unlock.text == "Unlocked by caregiver"
        u.tap(prep.begin)
        u.wait_until(lambda: u.app.current == "session")
        assert u.state.phase.value == "running"
        first = events(u, "start")[0]
        assert first["detail"]["caregiver_unlocked"] is True
        assert u.svc.caregiver_unlocked is False           # one unlock, one session
    finally:
        u.close()


def test_cancel_while_the_session_starts_stops_that_session(ui):
    """Cancel lands after Begin but before the engine has answered: the session the engine
    then starts has no screen to control it, so it is stopped, never left playing."""
    ui.tap(ui.app.screens["home"].start)
    prep = ui.app.screens["prepare"]
    ui.wait_until(lambda: prep.contacts is not None, what="contact poll")
    engine = ui.app.engine
    answers = []
    ui.app.start_session(answers.append)       # Begin ...
    ui.app.cancel_preparation()                # ... and Cancel in the same frame
    assert ui.app.current == "home"
    ui.wait_until(lambda: engine.state.phase.ended, what="the started session stopped")
    assert engine.state.phase.value == "stopped" and answers == []
    ui.pump(0.2)
    assert ui.app.current == "home" and ui.app.engine is None
    assert not ui.device.sim_board.effective_enable()
    assert ui.device.store.export()["sessions"][-1]["status"] == "stopped"


def test_clinician_imports_validates_and_exports(ui, tmp_path):
    ui.tap(ui.app.screens["home"].header_buttons.children[0])   # Clinic (rightmost)
    clin = ui.app.screens["clinician"]
    assert ui.app.current == "clinician"
    for k in ("0", "0", "0", "0", "ok"):                # simulated board, no PIN configured
        ui.tap(clin.pad.buttons[k])
    assert clin.unlocked
    stick = tmp_path / "stick"
    write_rx(stick, id="rx-new-0002")
    bad = stick / "bad.json"
    bad.write_text(json.dumps({"format": "homeapp.prescription/1", "id": "x", "blocks": []}))
    clin.extra_dirs = [str(stick)]
    clin.refresh()
    ui.pump(0.1)
    names = {b.text.rsplit("/", 1)[-1]: b for b in clin.file_buttons}
    ui.tap(names["bad.json"])                       # shown for checking: refused, nothing to install
    assert clin.preview_lines[0] == "Refused:" and clin.install_button is None
    ui.tap(clin.cancel_button)
    assert ui.svc.rx.id == "rx-ui-test"
    clin.refresh()
    ui.pump(0.1)
    names = {b.text.rsplit("/", 1)[-1]: b for b in clin.file_buttons}
    ui.tap(names["rx-new-0002.json"])
    assert ui.svc.rx.id == "rx-ui-test"                  # shown for checking first
    ui.tap(clin.install_button)
    assert ui.svc.rx.id == "rx-new-0002"
    assert "Imported rx-new-0002." in clin.message.text
    assert "unsigned" in clin.message.text               # shown, since the simulated board allows it
    ui.tap(clin.tab_log)
    ui.pump(0.1)
    export_button = [w for w in clin.content.walk() if getattr(w, "text", "").startswith("Export to")][0]
    ui.tap(export_button)
    assert clin.message.text.startswith("Exported to ")
    path = clin.message.text[len("Exported to "):]
    assert json.loads(open(path).read())["sessions"] == []
    assert os.path.exists(path[:-len(".json")] + ".csv")
    # the signed bundle for the clinician verifies with the device key exported beside it
    from homeapp.bundle import verify_bundle
    from schedules.signing import load_public_key
    folder = os.path.dirname(path)
    bundle = path[:-len(".json")] + ".bundle"
    assert verify_bundle(bundle, load_public_key(os.path.join(folder, "homeapp-device-key.pub"))) == []


def test_clinician_adds_a_key_and_the_signed_prescription_verifies(ui, tmp_path):
    from schedules.signing import generate_keypair, save_public_key, sign_prescription
    ui.tap(ui.app.screens["home"].header_buttons.children[0])   # Clinic (rightmost)
    clin = ui.app.screens["clinician"]
    for k in ("0", "0", "0", "0", "ok"):
        ui.tap(clin.pad.buttons[k])
    stick = tmp_path / "stick"
    write_rx(stick, id="rx-signed-0003")
    private, public = generate_keypair()
    rx_path = stick / "rx-signed-0003.json"
    rx_path.write_text(json.dumps(sign_prescription(json.loads(rx_path.read_text()), private)))
    save_public_key(stick / "dr-berg.pub", public)
    clin.extra_dirs = [str(stick)]
    clin.refresh()
    ui.pump(0.1)
    keys = [b for b in clin.file_buttons if b.text.startswith("Trust the clinician key")]
    assert [b.text for b in keys] == ["Trust the clinician key dr-berg.pub"]
    ui.tap(keys[0])
    assert clin.message.text.startswith("Key ") and clin.message.text.endswith(" is trusted now.")
    names = {b.text.rsplit("/", 1)[-1]: b for b in clin.file_buttons}
    ui.tap(names["rx-signed-0003.json"])
    ui.tap(clin.install_button)                          # after checking the summary
    assert ui.svc.rx.id == "rx-signed-0003"
    assert clin.message.text == "Imported rx-signed-0003."   # verified: no signature warning


def test_language_switch_to_swedish_and_back(ui):
    home = ui.app.screens["home"]
    ui.tap(home.lang_button)
    assert "STARTA" in texts(home)
    assert home.lang_button.text == "English"
    ui.tap(home.start)
    assert "Förbered" in texts(ui.screen)
    ui.tap(ui.screen.header_buttons.children[0])        # Avbryt
    assert ui.app.current == "home"
    ui.tap(home.lang_button)
    assert "START" in texts(home)
    assert ui.svc.language() == "en"


def test_every_button_is_at_least_60_px(ui):
    from homeapp.ui.widgets import BigButton
    ui.start_session()
    ui.pump(0.2)
    for name in ("home", "session", "history", "caregiver", "clinician", "prepare", "after"):
        if name != "session":
            screen = ui.app.screens[name]           # built on first use
            ui.app.sm.current = name
            screen.refresh()
        ui.pump(0.1)
        for w in ui.app.screens[name].walk():
            if isinstance(w, BigButton) and w.get_root_window() is not None:
                assert w.width >= 60 and w.height >= 60, (name, w.text, w.size)
    for w in ui.app.trainer.walk():
        if isinstance(w, BigButton):
            assert w.width >= 60 and w.height >= 60, ("trainer", w.text, w.size)


def test_a_device_that_cannot_open_says_so_on_the_screen(tmp_path, monkeypatch):
    """No blank screen: main() shows what happened and whom to call, and exits 1."""
    from homeapp.ui import app as app_module
    from homeapp.ui import services

    def refuse(cls, config_path=None):
        raise OSError("cannot reach pigpiod on 127.0.0.1:8888")
    monkeypatch.setattr(services.Services, "open", classmethod(refuse))
    shown = {}

    def fake_run(self):
        root = self.build()
        shown["texts"] = texts_of_tree(root)
    monkeypatch.setattr(app_module.StartupErrorApp, "run", fake_run)
    assert app_module.main(config_path=None) == 1
    assert "The trainer cannot start." in shown["texts"]
    assert any("cannot reach pigpiod" in t for t in shown["texts"])


def texts_of_tree(widget):
    from kivy.uix.label import Label
    return [w.text for w in widget.walk() if isinstance(w, Label) and w.text]


def test_five_wrong_pins_lock_the_mode_out_and_the_log_says_so(ui):
    ui.tap(ui.app.screens["home"].header_buttons.children[0])   # Clinic (rightmost)
    clin = ui.app.screens["clinician"]
    for _attempt in range(5):
        for k in ("1", "2", "3", "4", "ok"):
            ui.tap(clin.pad.buttons[k])
    assert not clin.unlocked
    assert "Too many wrong PINs. Try again in 5 min." in texts(clin)
    for k in ("0", "0", "0", "0", "ok"):                     # the right PIN, during the lockout
        ui.tap(clin.pad.buttons[k])
    assert not clin.unlocked
    lockouts = [e for e in ui.device.store.device_events() if e["kind"] == "pin_lockout"]
    assert len(lockouts) == 1 and lockouts[0]["detail"]["role"] == "clinician"


def test_adjust_moves_a_prescribed_value_within_its_range(tmp_path):
    """A block's frequency the clinic lets the patient move (45 to 55 Hz): Adjust shows it,
    + goes through the engine one step at a time and stops at 55, the log says `set`."""
    from tests.uitools import SHORT_RX
    block = dict(SHORT_RX["blocks"][0], hz={"value": 50, "min": 45, "max": 55})
    u = UI(tmp_path, rx_changes={"blocks": [block]})
    try:
        u.start_session()
        sess = u.screen
        u.wait_until(lambda: u.state.phase.value == "running")
        u.wait_until(lambda: sess.adjust_button.get_root_window() is not None, what="the Adjust button")
        assert sess.adjust_button.text == "Adjust"
        u.tap(sess.adjust_button)
        view = sess.adjust_view
        assert sess.adjusting and view.get_root_window() is not None
        assert [(r.block_index, r.param) for r in view.rows] == [(0, "hz")]
        row = view.rows[0]
        shown = texts(view)
        assert "Frequency" in shown and "Now, block 1: strength" in shown
        assert "allowed from 45 to 55 Hz" in shown and "50" in shown
        assert not row.plus.disabled and not row.minus.disabled
        for _ in range(10):
            if row.plus.disabled:
                break
            u.tap(row.plus)
            u.wait_until(lambda: row.pending is None, what="the engine's answer")
        assert row.plus.disabled and not row.minus.disabled
        assert row.shown.text == "55" and "55" in texts(view)
        assert row.note.text == ""
        assert u.app.engine._blocks[0].hz == 55
        sets = [e["detail"] for e in events(u, "set")]
        assert [d["value"] for d in sets] == [51, 52, 53, 54, 55]
        assert all(d["param"] == "hz" and d["block"] == 0 for d in sets)
        assert not [e for e in events(u, "refused") if e["detail"].get("what") == "set"]
        u.tap(row.minus)
        u.wait_until(lambda: row.shown.text == "54", what="54 after -")
        assert not row.plus.disabled
        # A value the engine refuses (beyond the range): the row says the engine's reason.
        view.send(row, 60.0)
        u.wait_until(lambda: row.note.text != "", what="the refusal on screen")
        assert row.note.text.startswith("Not changed: ") and "outside the prescribed range 45 to 55" in row.note.text
        assert row.shown.text == "54" and u.app.engine._blocks[0].hz == 54
        assert [e for e in events(u, "refused") if e["detail"].get("what") == "set"]
        from homeapp.ui.widgets import BigButton
        for w in list(view.walk()) + [sess.adjust_button]:
            if isinstance(w, BigButton):
                assert w.width >= 60 and w.height >= 60, (w.text, w.size)
        u.tap(view.done)
        assert not sess.adjusting and view.get_root_window() is None
        assert u.app.current == "session" and u.state.phase.value == "running"
    finally:
        u.close()


def test_adjust_is_hidden_without_adjustable_values(ui):
    ui.start_session()
    ui.wait_until(lambda: ui.state.phase.value == "running")
    ui.pump(0.2)
    assert ui.screen.adjust_button.get_root_window() is None
