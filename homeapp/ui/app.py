"""The touchscreen app: screens over the session engine.

`homeapp` (no command) calls `main(config_path=...)`. The app opens the device (the
simulated board unless configured for the real one), shows Home, and while a session runs
polls the engine's state snapshot at 20 Hz and renders it; every touch becomes one quick
engine call. Nothing here talks to the board.
"""
from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)

WINDOW_SIZE = (800, 480)
POLL_HZ = 20
#: With no display (`make run` on a virtual screen): where a picture of the screen is
#: written, and how often, so that someone can look at it.
SCREEN_PICTURE_ENV = "HOMEAPP_SCREEN_PICTURE"
SCREEN_PICTURE_EVERY_S = 3.0


def configure_kivy() -> None:
    """Window size and input settings, before the Kivy window exists."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    # SDL2 reads every image we show (PNG) and writes screenshots: PIL's import costs
    # a good part of a second at start-up on a Pi.
    os.environ.setdefault("KIVY_IMAGE", "sdl2")
    from kivy.config import Config
    Config.set("graphics", "width", str(WINDOW_SIZE[0]))
    Config.set("graphics", "height", str(WINDOW_SIZE[1]))
    Config.set("graphics", "resizable", "0")
    Config.set("kivy", "exit_on_escape", "0")
    # Input providers stay as configured: the kiosk's Kivy config (deploy/kivy) reads the
    # touchscreen alone on purpose, and adding "mouse" here would make each tap arrive twice.
    if not Config.getboolean("kivy", "desktop") and Config.get("kivy", "keyboard_mode") == "":
        # A touchscreen appliance has no keyboard: the comment field gets one on the screen.
        Config.set("kivy", "keyboard_mode", "systemanddock")


configure_kivy()

from kivy.app import App  # noqa: E402
from kivy.clock import Clock  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.uix.boxlayout import BoxLayout  # noqa: E402
from kivy.uix.floatlayout import FloatLayout  # noqa: E402
from kivy.uix.screenmanager import NoTransition, ScreenManager  # noqa: E402

from . import i18n  # noqa: E402
from .sound import Beeper  # noqa: E402


def _screen_class(name: str):
    import importlib
    module, cls = SCREENS[name]
    return getattr(importlib.import_module(f"homeapp.ui.{module}"), cls)


#: Screen name -> (module, class).
SCREENS = {
    "home": ("home", "HomeScreen"), "prepare": ("prepare", "PrepareScreen"),
    "session": ("session", "SessionScreen"), "after": ("after", "AfterScreen"),
    "history": ("history", "HistoryScreen"), "caregiver": ("caregiver", "CaregiverScreen"),
    "clinician": ("clinician", "ClinicianScreen"),
}


class _Screens(dict):
    """name -> screen; a screen is built the first time it is asked for."""

    def __init__(self, app):
        super().__init__()
        self.app = app

    def __missing__(self, name):
        if name not in SCREENS:
            raise KeyError(name)
        screen = _screen_class(name)(self.app, name=name)
        self[name] = screen
        self.app.sm.add_widget(screen)
        return screen


class HomeApp(App):
    title = "Home NMES trainer"

    def __init__(self, svc, **kw):
        super().__init__(**kw)
        self.svc = svc
        self.engine = None
        self.link = None                # the engine's state and commands, beside the UI thread
        self.state = None
        self.beeper = Beeper()
        self._poll_event = None
        self._contact_event = None
        self.started_at = None          # monotonic time Home was first drawn

    # ------------------------------------------------------------------ build
    def build(self):
        from .alerts import AlertOverlay
        from .trainer import TrainerPanel

        i18n.set_language(self.svc.language())
        Window.clearcolor = (0.043, 0.075, 0.125, 1)
        root = BoxLayout(orientation="vertical")
        self.trainer = None
        if self.svc.show_trainer_panel:
            self.trainer = TrainerPanel(self)
            root.add_widget(self.trainer)
        stage = FloatLayout()
        self.sm = ScreenManager(transition=NoTransition())
        self.screens = _Screens(self)      # built on first use: Home comes up sooner
        self.screens["home"]
        stage.add_widget(self.sm)
        self.overlay = AlertOverlay(self)
        stage.add_widget(self.overlay)
        root.add_widget(stage)
        self.root_widget = root
        self.screens["home"].refresh()
        self.svc.on_clinic_change = lambda: Clock.schedule_once(self._clinic_changed, 0)
        self._poll_event = Clock.schedule_interval(self._poll, 1 / POLL_HZ)
        Clock.schedule_once(self._first_frame, 0)
        picture = os.environ.get(SCREEN_PICTURE_ENV)
        if picture:
            Clock.schedule_interval(lambda _dt: write_screen_picture(picture), SCREEN_PICTURE_EVERY_S)
        return root

    def _clinic_changed(self, _dt) -> None:
        """A sync or a pairing finished (a new program may have arrived): show it."""
        self.svc.reload_if_changed()
        if self.current in ("home", "clinician"):
            self.screens[self.current].refresh()

    def _first_frame(self, _dt):
        if self.started_at is None:
            self.started_at = time.monotonic()

    # ------------------------------------------------------------------ navigation
    def go(self, name: str) -> None:
        screen = self.screens[name]
        if name == "caregiver" or name == "clinician":
            screen.lock()
        if name == "home":
            self.svc.reload_if_changed()   # a program that arrived during Preparation or a session
        if self.sm.current == name:
            screen.refresh()
        else:
            self.sm.current = name         # its on_pre_enter refreshes it
        if self.state is not None:
            screen.render(self.state)

    @property
    def current(self) -> str:
        return self.sm.current

    def toggle_language(self) -> None:
        lang = "sv" if i18n.language() == "en" else "en"
        self.set_language(lang)

    def set_language(self, lang: str) -> None:
        lang = i18n.set_language(lang)
        self.svc.save_language(lang)
        if self.svc.rx_demo and self.engine is None:
            self.svc.relabel_demo()   # the device wrote the DEMO: its labels follow the language
        for s in list(self.screens.values()):
            s.refresh()
        self.overlay.refresh()
        if self.trainer:
            self.trainer.refresh()
        if self.state is not None:
            self.render(self.state)

    def load_demo(self) -> None:
        self.svc.load_demo()
        self.screens["home"].refresh()

    # ------------------------------------------------------------------ session flow
    def begin_preparation(self) -> None:
        """Start on Home: an engine for this session, then Preparation."""
        from .link import EngineLink
        if self.svc.rx is None:
            return
        if self.engine is None or self.link is None or self.link.state.phase.ended:
            self._drop_engine()
            self.engine = self.svc.new_engine()
            self.engine.add_listener(self._engine_event)
            self.link = EngineLink(self.engine, POLL_HZ)
            self.state = self.link.state
        self.go("prepare")

    def _drop_engine(self) -> None:
        if self.link is not None:
            self.link.close()
        self.link = None
        self.engine = None
        self.state = None
        self.svc.drop_engine()

    def cancel_preparation(self) -> None:
        self._drop_engine()
        self.svc.caregiver_unlocked = False
        self.go("home")

    def start_session(self, on_result) -> None:
        """Begin on Preparation: the engine starts on the worker; `on_result(reasons)` gets
        the refusals (empty when the session started, and then the session screen shows)."""
        from homeapp.engine import StartRefused
        unlocked = self.svc.caregiver_unlocked
        link = self.link

        def done(_result, error):
            if self.link is not link:
                # Cancelled while the engine was starting: nobody holds this session any
                # more, so it is stopped now rather than left playing with no screen.
                if error is None:
                    link.stop_now()
                return
            if error is None:
                self.svc.caregiver_unlocked = False
                self.state = link.state
                self.go("session")
                on_result([])
            elif isinstance(error, StartRefused):
                on_result(list(error.reasons))
            else:
                on_result([str(error)])
        self.link.start(caregiver_unlocked=unlocked, done=done)

    # A touch on the session screen: one typed engine call each, run beside the UI by the
    # link (nothing happens when no session is open).
    def increase(self, channel: int) -> None:
        """+ on a channel."""
        if self.link is not None:
            self.link.increase(channel)

    def decrease(self, channel: int) -> None:
        """- on a channel."""
        if self.link is not None:
            self.link.decrease(channel)

    def restore(self, channel: int) -> None:
        """Back to the level before the pause, on a channel."""
        if self.link is not None:
            self.link.restore(channel)

    def pause(self) -> None:
        """The patient's pause."""
        if self.link is not None:
            self.link.pause()

    def resume(self) -> None:
        """Go on after a pause."""
        if self.link is not None:
            self.link.resume()

    def stop_session(self) -> None:
        """STOP: always works, in any phase, and never waits behind another command.
        (Not `stop`: that is Kivy's App.stop, which ends the app.)"""
        if self.link is not None:
            self.link.stop_now()

    def _engine_event(self, kind: str, detail: dict) -> None:
        # Called from the engine's thread: only schedule work on the UI thread.
        if kind == "contraction_start":
            Clock.schedule_once(lambda _dt: self.beeper.beep(), 0)
        if self.link is not None:
            self.link.refresh()
        Clock.schedule_once(lambda _dt: self._poll(0), 0)

    def _poll(self, _dt) -> None:
        link = self.link
        if link is None:
            return
        state = link.state
        previous = self.state
        self.state = state
        self.render(state)
        if state.phase.ended and self.current == "session" and (state.alert is None or not state.alert.needs_ack):
            self.screens["after"].set_result(state)
            self.go("after")
        if previous is not None and previous.phase != state.phase and state.phase.ended and self.current in ("prepare",):
            self.go("home")

    def render(self, state) -> None:
        self.overlay.render(state)
        screen = self.screens.get(self.current)
        if screen is not None:
            screen.render(state)

    def acknowledge(self) -> None:
        """OK on a whole-screen alert."""
        if self.link is not None:
            self.link.acknowledge()

    def finish_session(self, pain, effort, comment) -> None:
        """Save on After: the report goes to the log beside the UI, and Home shows at once."""
        link = self.link
        if link is not None:
            def saved(_r, error):
                link.close()
                if error is not None:
                    log.error("saving the report failed: %s", error)
                self.screens["home"].refresh()
            link.save_report(pain=pain, effort=effort, comment=comment or None, done=saved)
        self.link = None
        self.engine = None
        self.state = None
        self.overlay.render(None)
        self.go("home")
        self.svc.sync_soon()      # the session goes to the clinic now

    def skip_report(self, comment: str = "") -> None:
        """Skip on After: the log records that pain and effort were not answered (an event
        `report_skipped`, with the comment if one was typed), and Home shows at once."""
        link = self.link
        if link is not None:
            def logged(_r, error):
                link.close()
                if error is not None:
                    log.error("logging the skipped report failed: %s", error)
                self.screens["home"].refresh()
            link.note_report_skipped(comment=comment or None, done=logged)
        self.link = None
        self.engine = None
        self.state = None
        self.overlay.render(None)
        self.go("home")
        self.svc.sync_soon()

    def on_stop(self):
        if self._poll_event is not None:
            self._poll_event.cancel()
        if self.link is not None:
            self.link.close()
        self.svc.close()


def write_screen_picture(path: str) -> None:
    """A PNG of the window at `path`, replaced whole (a viewer never reads half of one)."""
    tmp = f"{path}.tmp.png"
    try:
        written = Window.screenshot(tmp)
        if written:
            os.replace(written, path)
    except Exception:
        log.exception("cannot write the screen picture %s", path)


class StartupErrorApp(App):
    """What the screen says when the device cannot be opened (no pigpiod, a damaged log, a
    bad configuration): that no stimulation is possible and whom to call, never a blank
    screen. The technical reason is shown small for the technician."""

    title = "Home NMES trainer"

    def __init__(self, detail: str, **kw):
        super().__init__(**kw)
        self.detail = detail

    def build(self):
        from .i18n import _
        from .widgets import Text, Theme, paint_background
        box = BoxLayout(orientation="vertical", padding=30, spacing=16)
        paint_background(box)
        box.add_widget(Text(_("The trainer cannot start."), size=44, bold=True, size_hint_y=None, height=70))
        box.add_widget(Text(_("No stimulation is possible. Call your clinic."), size=Theme.font_large,
                            size_hint_y=None, height=100))
        box.add_widget(Text(self.detail, size=Theme.font_small - 2, color=Theme.muted, valign="top"))
        return box


def _language_of(config_path) -> str:
    try:
        from homeapp.config import load_config
        return load_config(config_path).language
    except Exception:
        return "en"


def keep_numpy_out() -> None:
    """sqlite_utils imports numpy (and pandas, where installed) when it is imported, only to
    accept their number types, which the touchscreen never hands it: about 12 MB resident
    for nothing on the device. Marked absent in the app's own process before the log is
    opened (never in a process that makes the clinician's report, which needs numpy)."""
    import sys
    for name in ("numpy", "pandas"):
        if name not in sys.modules:
            sys.modules[name] = None     # `import numpy` raises ImportError from now on


def main(config_path: str | None = None) -> int:
    keep_numpy_out()
    from .services import Services
    try:
        svc = Services.open(config_path)
    except Exception as e:  # shown on the screen, logged, and the exit code says so
        log.exception("the device could not be opened")
        i18n.set_language(_language_of(config_path))
        StartupErrorApp(f"{type(e).__name__}: {e}").run()
        return 1
    try:
        HomeApp(svc).run()
    finally:
        svc.close()          # idempotent: the safe stop and the log closed on every way out
    return 0
