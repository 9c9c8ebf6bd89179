"""`python -m tests.uitools.screenshots OUTDIR`: a PNG of every screen, in English and
Swedish, rendered from hand-made engine states, 800 x 480 as on the official 7-inch
touchscreen. Run under Xvfb (`make screenshots`).

The pictures show what the simulated board shows (the app's default): the trainer's panel
across the top, its buttons read from a simulated board whose e-stop and electrodes are
set as each scene has them, so no screen gets the panel's height for free."""
from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

from homeapp.active_prescription import DEMO_PRESET
from homeapp.state import Alert, AlertKind, ChannelState, EngineState, Notice, Phase

TODAY = dt.date(2026, 11, 21)
#: The DEMO program's id: the sample log's sessions are of the program Home shows.
DEMO_RX_ID = "DEMO-" + DEMO_PRESET


class FakeStore:
    """The log's reading side over a list of sessions in the export's shape."""

    def __init__(self, sessions):
        self._sessions = sessions

    def export(self):
        return {"sessions": self._sessions}

    def sessions(self):
        return list(self._sessions)

    def session_spans(self, prescription_id):
        return [s for s in self._sessions if s["prescription_id"] == prescription_id]

    def pin_state(self, role):
        return 0, None          # no wrong PINs, no lockout

    def clear_pin_state(self, role):
        pass

    def record_pin_state(self, role, **kw):
        pass

    def write_problem(self):
        return None                     # the pictures' log always takes a session

    def session_starts(self, prescription_id=None):
        return [(dt.datetime.fromisoformat(s["started_at"]), s["status"]) for s in self._sessions
                if prescription_id is None or s["prescription_id"] == prescription_id]


class FakeEngine:
    """Holds a state; every call is accepted and ignored (for pictures only)."""

    def __init__(self, state, contacts=(True, True)):
        self.state = state
        self.contacts = contacts

    def poll_contacts(self):
        return self.contacts

    def start_refusals(self, caregiver_unlocked=False):
        return []

    def __getattr__(self, name):
        return lambda *a, **k: None


class FakeDevice:
    """A simulated device for pictures: the log is `store`, the board a real simulated
    board (no pigpiod in front of it: only the trainer's hands touch it)."""

    simulated = True

    def __init__(self, store):
        from homeapp.device import TrainerHands
        from hw.clock import VirtualClock
        from hw.pins import load_pin_map
        from hw.sim import SimBoard

        self.store = store
        self.sim_board = SimBoard(pins=load_pin_map(), clock=VirtualClock())
        self.hands = TrainerHands(self.sim_board)
        self.trust = None

    def new_engine(self, rx, **_options):
        """Home's start check asks an idle engine: the pictures' one refuses nothing."""
        return FakeEngine(state=None)

    def close(self):
        pass


def sample_sessions(today=TODAY):
    out = []
    day = today - dt.timedelta(days=40)
    ma0, ma1 = 18.0, 16.0
    k = 0
    while day < today:
        if day.weekday() not in (2, 6):
            k += 1
            status = "completed" if k % 9 else "stopped"
            ma0, ma1 = min(40, ma0 + 0.7), min(40, ma1 + 0.6)
            out.append({"id": f"s{k}", "prescription_id": DEMO_RX_ID,
                        "started_at": f"{day.isoformat()}T09:30:00+00:00",
                        "ended_at": f"{day.isoformat()}T09:45:00+00:00", "status": status,
                        "planned_contractions": 12,
                        "channels": [{"contractions": 12, "peak_ma": round(ma0), "mean_ma": round(ma0) - 2},
                                     {"contractions": 12, "peak_ma": round(ma1), "mean_ma": round(ma1) - 2}],
                        "events": ([{"t": 40.0, "kind": "lead_off", "detail": {"channel": 1}}] if k % 9 == 0 else [])
                        + ([{"t": 80.0, "kind": "refused", "detail": {"channel": 0, "ma": 41, "limit": 40}}] if k % 7 == 0 else [])})
        day += dt.timedelta(days=1)
    return out


def channel(i, label, target, cap=40.0, contracting=True, previous=0.0, contact=True, done=3):
    return ChannelState(index=i, label=label, max_ma=cap, target_ma=target, set_ma=target,
                        previous_ma=previous, contact=contact, contracting=contracting,
                        contractions_done=done, peak_ma=target)


def session_state(**kw):
    base = dict(phase=Phase.RUNNING, session_id="s1", prescription_id=DEMO_RX_ID,
                block_index=1, block_label="strength", blocks_total=2, cycle_index=2, cycles_total=6,
                contracting=True, phase_left_s=6.2, elapsed_s=260, total_s=900,
                channels=(channel(0, "left quadriceps", 24), channel(1, "right quadriceps", 22)))
    base.update(kw)
    return EngineState(**base)


def make_services(tmp: Path, sessions):
    from homeapp.active_prescription import demo_prescription_dict
    from homeapp.services import Services
    import json

    class Cfg:
        board = "simulated"
        language = "en"
        caregiver_pin_hash = None
        clinician_pin_hash = None
        show_trainer_panel = True       # as on the simulated board, the app's default
        data_dir = tmp
        trust_dir = tmp / "trust"

    svc = Services(config=Cfg(), device=FakeDevice(FakeStore(sessions)), today=TODAY)
    data = demo_prescription_dict(TODAY - dt.timedelta(days=80))
    (tmp / "prescription.json").write_text(json.dumps(data))
    svc.settings.update(rx_demo=True)
    svc.load_current_prescription()
    svc.export_dirs = lambda: [Path("/media/pi/USB-STICK")]     # as on the device
    svc.find_import_files = lambda extra=(): [Path("/media/pi/USB-STICK/rx-0042-2026-11.json")]
    return svc


def shoot(app, path: Path):
    from kivy.base import EventLoop
    from kivy.core.window import Window
    for _ in range(4):
        EventLoop.idle()
    got = Window.screenshot(str(path))
    if got and Path(got) != path:
        os.replace(got, path)


restore: list = []     # undo steps of the last scene


def scenes(app):
    """(name, setup) for every screen and alert."""
    sv = app.svc
    hands = sv.trainer_hands

    def board(*, estop=False, leads_off=()):
        """The simulated board as the scene has it (the e-stop held, electrodes off): the
        trainer's panel reads its buttons from there."""
        if estop:
            hands.press_estop()
        for ch in leads_off:
            hands.set_lead(ch, False)
        app.trainer.refresh()

        def undo():
            hands.release_estop()
            for ch in range(2):
                hands.set_lead(ch, True)
            app.trainer.refresh()
        restore.append(undo)

    def home():
        app.engine = None
        app.state = None
        app.overlay.render(None)
        app.go("home")

    def prepare():
        rx = sv.rx
        board(leads_off=(1,))
        app.engine = FakeEngine(session_state(phase=Phase.READY), contacts=(True, False))
        app.state = app.engine.state
        app.go("prepare")
        scr = app.screens["prepare"]
        scr.on_leave()
        scr._polled((True, False), [])
        scr.skin_checked = True
        scr.refresh()
        assert rx is not None

    def session(world=None, **kw):
        def f():
            board(**(world or {}))
            st = session_state(**kw)
            app.engine = FakeEngine(st)
            app.state = st
            app.go("session")
            app.render(st)
        return f

    def session_adjust():
        """Adjust over the Session screen: the DEMO's strength block lets the patient move
        pulse width (250 to 400 us, here moved to its top: + is off) and rest."""
        st = session_state(block_label=sv.rx.blocks[1].label)
        app.engine = FakeEngine(st)
        app.engine.rx = sv.rx
        app.state = st
        app.go("session")
        app.render(st)
        scr = app.screens["session"]
        scr.open_adjust()
        row = next(r for r in scr.adjust_view.rows if r.param == "pulse_us")
        row.value = row.range.max
        row.refresh()
        restore.append(lambda: (scr.close_adjust(), setattr(scr, "adjust_view", None)))

    def after():
        st = session_state(phase=Phase.COMPLETED, elapsed_s=900, contracting=False,
                           channels=(channel(0, "left quadriceps", 30, done=12, contracting=False),
                                     channel(1, "right quadriceps", 27, done=12, contracting=False)))
        app.engine = FakeEngine(st)
        app.state = st
        app.screens["after"].set_result(st)
        app.screens["after"].planned_contractions = 12   # the FakeEngine holds no prescription
        app.go("after")
        app.render(st)
        a = app.screens["after"]
        a.pain.pick(2)
        a.effort.pick(5)
        a.refresh()

    def home_empty():
        home()
        keep = sv.rx, sv.rx_demo
        sv.rx, sv.rx_demo = None, False
        app.screens["home"].refresh()
        restore.append(lambda: (setattr(sv, "rx", keep[0]), setattr(sv, "rx_demo", keep[1])))

    def with_trainer():
        session(world={"leads_off": (1,)},
                alert=Alert(AlertKind.LEAD_OFF, channel=1, detail="electrode contact lost on right quadriceps"),
                phase=Phase.PAUSED, contracting=False)()

    def history():
        app.engine = None
        app.state = None
        app.overlay.render(None)
        app.go("history")

    def locked(name):
        def f():
            app.engine = None
            app.state = None
            app.overlay.render(None)
            app.go(name)
        return f

    def unlocked(name, tab=None):
        def f():
            locked(name)()
            scr = app.screens[name]
            scr.check_pin("0000")
            if tab:
                scr.show_tab(tab)
        return f

    cap = Notice("at_cap", {"channel": 0, "max_ma": 40.0}, "40 mA is the cap")
    return [
        ("home", home),
        ("home-no-program", home_empty),
        ("prepare", prepare),
        ("session-contract", session()),
        ("session-rest", session(contracting=False, phase_left_s=17.4,
                                 channels=(channel(0, "left quadriceps", 24, contracting=False),
                                           channel(1, "right quadriceps", 22, contracting=False)))),
        ("session-at-cap", session(notice=cap, channels=(channel(0, "left quadriceps", 40),
                                                          channel(1, "right quadriceps", 22)))),
        ("session-paused", session(phase=Phase.PAUSED, contracting=False,
                                   channels=(channel(0, "left quadriceps", 0, previous=24),
                                             channel(1, "right quadriceps", 0, previous=22)))),
        ("session-resumed", session(channels=(channel(0, "left quadriceps", 0, previous=24),
                                              channel(1, "right quadriceps", 0, previous=22)))),
        ("session-adjust", session_adjust),
        ("alert-estop", session(world={"estop": True}, phase=Phase.ABORTED, contracting=False,
                                alert=Alert(AlertKind.ESTOP, detail="e-stop input low", needs_ack=True))),
        ("alert-estop-held", session(world={"estop": True}, phase=Phase.ABORTED, contracting=False,
                                     alert=Alert(AlertKind.ESTOP, detail="e-stop input low", needs_ack=True),
                                     notice=Notice("estop_pressed", {}, "release the e-stop first"))),
        ("alert-lead-off", session(world={"leads_off": (1,)}, phase=Phase.PAUSED, contracting=False,
                                   alert=Alert(AlertKind.LEAD_OFF, channel=1, detail="ch1 sense 12 counts"))),
        ("alert-fault", session(phase=Phase.ABORTED, contracting=False,
                                alert=Alert(AlertKind.FAULT, detail="BoardFault: pigpio socket closed", needs_ack=True))),
        ("trainer-panel-lead-off", with_trainer),
        ("after", after),
        ("history", history),
        ("caregiver-pin", locked("caregiver")),
        ("caregiver", unlocked("caregiver")),
        ("clinician", unlocked("clinician", "rx")),
        ("clinician-log", unlocked("clinician", "log")),
    ]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/screens")
    out.mkdir(parents=True, exist_ok=True)
    from homeapp.ui.app import HomeApp
    from kivy.core.window import Window
    tmp = Path(tempfile.mkdtemp(prefix="homeapp-shots-"))
    svc = make_services(tmp, sample_sessions())
    app = HomeApp(svc)
    root = app.build()
    for name in ("prepare", "session", "after", "history", "caregiver", "clinician"):
        app.screens[name]
    Window.add_widget(root)
    root.size = Window.size
    if app._poll_event is not None:
        app._poll_event.cancel()          # states here are set by hand
    written = []
    for lang in ("en", "sv"):
        app.set_language(lang)
        for name, setup in scenes(app):
            setup()
            path = out / f"{name}-{lang}.png"
            shoot(app, path)
            written.append(path)
            while restore:
                restore.pop()()
    # The screen shown when the device cannot be opened at all.
    from homeapp.ui.app import StartupErrorApp
    Window.remove_widget(root)
    for lang in ("en", "sv"):
        app.set_language(lang)
        err = StartupErrorApp("BoardFault: cannot reach pigpiod on 127.0.0.1:8888 (connection refused)").build()
        Window.add_widget(err)
        path = out / f"startup-error-{lang}.png"
        shoot(app, path)
        written.append(path)
        Window.remove_widget(err)
    print("\n".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
