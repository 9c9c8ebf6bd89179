"""Helpers for the touchscreen tests, benchmarks and screenshots: a real app on the
simulated board, real touches. Tooling, not part of the device image.

The engine, its thread and the simulated board run on a held clock that moves only as the
test draws frames (at most `FRAME_MAX_S` of session time per frame, never faster than real
time). The engine serves every tick before time passes it, so a busy machine makes the
session slower, never its heartbeat late: the tests do not depend on the machine's speed."""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

#: The most session time one drawn frame moves the held clock.
FRAME_MAX_S = 0.05

SHORT_RX = {
    "format": "homeapp.prescription/1", "id": "rx-ui-test", "patient_id": "P-UI", "clinician_id": "C-UI",
    "sessions_per_week": 5, "max_sessions_per_day": 3, "min_hours_between": 0,
    "supervision": "none",
    "channels": [{"label": "left quadriceps", "max_ma": 6}, {"label": "right quadriceps", "max_ma": 5}],
    "blocks": [{"label": "strength", "minutes": 0.5, "hz": 50, "pulse_us": 300, "on_s": 3, "off_s": 2,
                "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "synchronous"}],
}


def write_rx(folder: Path, **changes) -> Path:
    data = json.loads(json.dumps(SHORT_RX))
    today = dt.date.today()
    data["issued"] = (today - dt.timedelta(days=7)).isoformat()
    data["expires"] = (today + dt.timedelta(days=60)).isoformat()
    data.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data['id']}.json"
    path.write_text(json.dumps(data))
    return path


class UI:
    """A HomeApp on a simulated Device, its root in Kivy's window, driven by touches."""

    def __init__(self, tmp: Path, config_extra: dict | None = None, rx_changes: dict | None = None):
        from kivy.core.window import Window

        from homeapp.config import config_from_dict
        from homeapp.device import open_device
        from homeapp.services import Services
        from homeapp.ui.app import HomeApp
        from hw.clock import HeldClock

        self.tmp = tmp
        self.config = config_from_dict(config_extra or {}, source=None, data_dir_default=tmp / "data")
        self.clock = HeldClock()
        self._wall = time.monotonic()
        # the app's own factory, on the held clock; no clinic link unless a test starts one
        self.device = open_device(self.config, clock=self.clock)
        self.svc = Services.open(config=self.config, device=self.device, clinic_link=False)
        ok, problems = self.svc.import_prescription(write_rx(tmp / "usb", **(rx_changes or {})))
        assert ok, problems
        self.app = HomeApp(self.svc)
        self.root = self.app.build()
        Window.add_widget(self.root)
        self.window = Window
        self.pump(0.1)

    # --------------------------------------------------------------- driving
    def frame(self) -> None:
        """One frame of the app, then the session's time moves as far as real time did
        (at most FRAME_MAX_S)."""
        from kivy.base import EventLoop
        EventLoop.idle()
        wall = time.monotonic()
        step_s, self._wall = min(wall - self._wall, FRAME_MAX_S), wall
        if step_s > 0:
            self.clock.advance(step_s)

    def pump(self, seconds: float = 0.05) -> None:
        end = time.monotonic() + seconds
        while True:
            self.frame()
            if time.monotonic() >= end:
                return

    def wait_until(self, cond, timeout: float = 5.0, what: str = "") -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what or cond}")
            self.frame()

    def tap(self, widget) -> None:
        """A finger down and up at the widget's centre, through the window like a real touch."""
        from kivy.tests.common import UnitTestTouch
        # Frames first, until the layout has settled: the widget is where the patient sees
        # it (a screen change can move it for a frame or two, more on a busy machine).
        at = None
        for _ in range(50):
            self.frame()
            now_at = (tuple(widget.to_window(*widget.center)), tuple(widget.size))
            if now_at == at:
                break
            at = now_at
        assert widget.get_root_window() is not None, f"{widget} is not on screen"
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        self.pump(0.03)

    @property
    def screen(self):
        return self.app.screens[self.app.current]

    @property
    def state(self):
        return self.app.engine.state if self.app.engine is not None else None

    def start_session(self) -> None:
        """Home -> Preparation -> Begin, by touches."""
        home = self.app.screens["home"]
        self.tap(home.start)
        assert self.app.current == "prepare"
        prep = self.app.screens["prepare"]
        self.wait_until(lambda: prep.contacts is not None, what="contact poll")
        self.tap(prep.skin)
        self.wait_until(lambda: not prep.begin.disabled, what="Begin enabled")
        self.tap(prep.begin)
        self.wait_until(lambda: self.app.current == "session", what="session screen")

    def close(self) -> None:
        try:
            if self.app.engine is not None:
                self.app.engine.stop()
        except Exception:
            pass
        if self.app._poll_event is not None:
            self.app._poll_event.cancel()
        self.window.remove_widget(self.root)
        self.svc.close()
        self.pump(0.02)


def texts(widget) -> list[str]:
    """Every label text shown under a widget (for asserting what is on screen)."""
    from kivy.uix.label import Label
    out = []
    for w in widget.walk(restrict=True):
        if isinstance(w, Label) and w.text and w.get_root_window() is not None:
            out.append(w.text)
    return out


def shots(u, name):
    """The screen at the device's 800 x 480, in English and Swedish, when HOMEAPP_SHOTS is set."""
    folder = os.environ.get("HOMEAPP_SHOTS")
    if not folder:
        return
    size = u.window.size
    u.window.size = (800, 480)
    try:
        for lang in ("en", "sv"):
            u.app.set_language(lang)
            u.pump(0.2)
            path = os.path.join(folder, f"{name}-{lang}.png")
            got = u.window.screenshot(path)
            if got and got != path:
                os.replace(got, path)       # Kivy numbers the file it writes
        u.app.set_language("en")
    finally:
        u.window.size = size
        u.pump(0.1)
