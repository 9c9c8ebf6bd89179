"""The app and the clinic: clinic mode pairs the device by typing the code and shows the
key id the clinic recorded; the log reaches the clinic by itself and Home says when; a
program the clinician publishes arrives on its own and Home says so. Real Kivy widgets
under Xvfb, the real service over TLS.

With HOMEAPP_CLINIC_SHOTS=DIR the screens are also saved there (docs/screens)."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.kivy

if not os.environ.get("DISPLAY"):
    pytest.skip("needs a display (run under xvfb-run)", allow_module_level=True)

from clinic.service import CLI  # noqa: E402
from tests.uitools import UI, texts  # noqa: E402
from schedules.signing import TrustStore, generate_keypair, save_public_key, sign_prescription  # noqa: E402

from .kit import ClinicServer, clinic_for, set_up_clinic  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"


def _shot(ui, name, tmp_path):
    """Both languages at the device's 800 x 480 (the other UI tests keep Kivy's own size)."""
    from kivy.core.window import Window

    from homeapp.ui.app import WINDOW_SIZE
    from tests.uitools.screenshots import shoot
    size = tuple(Window.size)
    Window.size = WINDOW_SIZE
    ui.root.size = Window.size
    for lang in ("en", "sv"):
        ui.app.set_language(lang)
        ui.pump(0.1)
        path = tmp_path / f"{name}-{lang}.png"
        shoot(ui.app, path)
        target = os.environ.get("HOMEAPP_CLINIC_SHOTS")
        if target:
            shutil.copyfile(path, Path(target) / path.name)
    ui.app.set_language("en")
    Window.size = size
    ui.root.size = Window.size
    ui.pump(0.1)


def test_pairing_by_touch_then_the_log_and_a_new_program_travel_by_themselves(tmp_path, tls_files):
    db_url = f"sqlite:///{tmp_path / 'clinic.db'}"
    clinic = clinic_for(db_url)
    code = set_up_clinic(clinic, patient="P-UI")
    private, public = generate_keypair()
    save_public_key(tmp_path / "alice.pub", public)
    clinic.add_clinician_key("alice", (tmp_path / "alice.pub").read_bytes())
    server = ClinicServer(db_url, tls_files).start()
    ui = UI(tmp_path / "device", config_extra={"clinic": {"url": server.url, "ca_cert": str(tls_files[2]),
                                                          "sync_interval_min": 1}})
    try:
        TrustStore(ui.config.trust_dir).add(public, label="alice")
        ui.svc.start_clinic_link()
        home = ui.app.screens["home"]
        ui.wait_until(lambda: ui.svc.clinic_status()["device_key_id"], what="the clinic link open")
        home.refresh()
        assert home.sync_line.text == "Log not yet sent to your clinic"

        ui.tap(home.header_buttons.children[0])                 # Clinic
        clin = ui.app.screens["clinician"]
        for k in "0000":
            ui.tap(clin.pad.buttons[k])
        ui.tap(clin.pad.buttons["ok"])
        ui.tap(clin.tab_clinic)
        key_id = ui.svc.clinic_status()["device_key_id"]
        shown = texts(clin)
        assert key_id[:19] in shown and key_id[20:] in shown     # in two lines of four groups
        assert "Not paired with a clinic." in shown
        for digit in code.replace("-", ""):
            ui.tap(clin.code_pad.buttons[digit])
        assert clin.code_pad.display.text == code               # digits shown as the clinic prints them
        ui.tap(clin.code_pad.buttons["ok"])
        ui.wait_until(lambda: clin.message.text.startswith("Paired."), timeout=20, what="paired")
        [patient] = clinic.patients(CLI)
        assert patient["devices"][0]["key_id"] == key_id         # both sides show the same key id
        assert "Paired for patient P-UI" in texts(clin)
        ui.wait_until(lambda: ui.svc.clinic_status()["last_ok_at"], timeout=20, what="the first sync")
        _shot(ui, "clinician-clinic", tmp_path)
        ui.tap(clin.tab_rx)                                      # the other tabs still draw
        ui.tap(clin.tab_log)
        ui.tap(clin.tab_clinic)

        rx = json.loads((DATA / "rx-valid-contract-example.json").read_text())
        today = dt.date.today()
        rx.update(id="rx-from-clinic", patient_id="P-UI", issued=(today - dt.timedelta(days=1)).isoformat(),
                  expires=(today + dt.timedelta(days=60)).isoformat())
        clinic.publish_prescription(CLI, "P-UI", json.dumps(sign_prescription(rx, private)))
        ui.app.go("home")
        ui.svc.sync_soon()
        ui.wait_until(lambda: ui.svc.rx.id == "rx-from-clinic", timeout=20, what="the new program")
        ui.wait_until(lambda: "New program from your clinic. It is used from your next session." in texts(home),
                      what="the notice on Home")
        assert home.sync_line.text.startswith("Log sent to your clinic today at")
        assert clinic.prescriptions(CLI, "P-UI")[-1]["device_status"] == "installed"
        _shot(ui, "home-clinic", tmp_path)
    finally:
        ui.close()
        server.stop()
