"""A program the clinic sends while Preparation is open: Preparation keeps showing the
program its engine was built for, Begin is refused with plain words, and Cancel brings
Home with the new program, whose session then runs the new one.

Real Kivy widgets under Xvfb, touches through the window, the simulated board, a real
SQLite log; the sync's install is the one the clinic link makes (homeapp/prescriptions.py)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from homeapp import prescriptions
from homeapp.store import session_lock_held
from tests.uikit import ui  # noqa: F401  (fixture)
from tests.uitools import SHORT_RX, shots, texts

CHANGED = "A new program has arrived. Press Cancel to see it."


def _new_program() -> dict:
    data = json.loads(json.dumps(SHORT_RX))
    today = dt.date.today()
    data.update(id="rx-from-the-clinic", issued=(today - dt.timedelta(days=1)).isoformat(),
                expires=(today + dt.timedelta(days=60)).isoformat())
    data["blocks"][0]["label"] = "endurance"
    return data


def _install_from_the_clinic(u, data: dict):
    """The install a sync makes when it brought a program (homeapp/sync.py)."""
    return prescriptions.install(data, u.svc.data_dir, trust=u.device.trust, store=u.device.store,
                                 origin="clinic", allow_unsigned=True,
                                 session_lock=prescriptions.session_lock_path(u.config.db_path))


def _sync_installs(u, data: dict) -> None:
    """A sync that brought a program: installed, then the app told (as the clinic link does)."""
    done = _install_from_the_clinic(u, data)
    assert done.ok, done.reasons
    u.svc.on_clinic_change()


def test_a_program_arriving_during_preparation_is_not_started_and_shows_after_cancel(ui):
    home, prep = ui.app.screens["home"], ui.app.screens["prepare"]
    ui.tap(home.start)
    assert ui.app.current == "prepare"
    ui.wait_until(lambda: prep.contacts is not None, what="contact poll")
    ui.tap(prep.skin)
    ui.wait_until(lambda: not prep.begin.disabled, what="Begin enabled")
    prepared = ui.app.engine
    # No poll between the install and the tap below (one would grey Begin first, and the
    # tap would start nothing to refuse): the contact poll is held, then let go after it.
    prep._event.cancel()
    ui.wait_until(lambda: not prep._busy, what="the poll under way answered")

    _sync_installs(ui, _new_program())
    ui.pump(0.1)
    # Preparation still shows the program its engine holds, not the one that just arrived
    assert ui.svc.rx.id == "rx-ui-test" and prepared.rx.id == "rx-ui-test"
    # the next poll greys Begin and says why; a tap that came first is refused the same way
    ui.tap(prep.begin)
    prep._event()                         # the poll goes on
    ui.wait_until(lambda: CHANGED in prep.why.text, what="the refusal on Preparation")
    ui.wait_until(lambda: prep.begin.disabled, what="Begin greyed by the next poll")
    assert ui.app.current == "prepare" and CHANGED in prep.why.text
    assert not prepared.under_way and ui.device.store.sessions() == []
    refused = [e for e in ui.device.store.device_events() if e["kind"] == "start_refused"]
    assert refused and "another prescription was installed" in refused[-1]["detail"]["reasons"][0]
    shots(ui, "prepare-new-program-arrived")

    cancel = next(b for b in prep.header_buttons.children if getattr(b, "msgid", None) == "Cancel")
    ui.tap(cancel)
    ui.wait_until(lambda: ui.app.current == "home", what="Home")
    ui.pump(0.1)
    assert ui.svc.rx.id == "rx-from-the-clinic"
    shown = texts(home)
    assert any("New program from your clinic" in t for t in shown), shown
    assert any("endurance" in t for t in shown), shown

    ui.start_session()
    assert ui.app.engine.rx.id == "rx-from-the-clinic"
    assert ui.device.store.sessions()[-1]["prescription_id"] == "rx-from-the-clinic"


def test_a_program_arriving_during_a_session_waits_until_it_has_ended(ui):
    ui.start_session()
    running = ui.app.engine
    # the log's session lock keeps the install out; the sync tries again after the session
    with pytest.raises(prescriptions.SessionRunning):
        _install_from_the_clinic(ui, _new_program())
    ui.svc.on_clinic_change()
    ui.pump(0.1)
    assert ui.svc.rx.id == "rx-ui-test" and running.under_way and running.rx.id == "rx-ui-test"
    ui.app.stop_session()
    # the engine's phase is ended a moment before the log has the end and lets its lock go
    lock = prescriptions.session_lock_path(ui.config.db_path)
    ui.wait_until(lambda: running.ended and not session_lock_held(lock), what="the session ended in the log")
    _sync_installs(ui, _new_program())
    ui.pump(0.1)
    assert ui.svc.rx.id == "rx-from-the-clinic"
