"""`homeapp session run`: one whole session, headless, on the simulated board.

The simulated pigpiod runs in this process on a free loopback port and the real driver
talks to it over pigpio's socket protocol, exactly as on a Pi. With `virtual_time` the
engine's loop owns a discrete-event clock, so a 20-minute session takes seconds and the
same prescription and actions give a byte-identical trace.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from hw.clock import RealClock, VirtualClock
from hw.pins import load_pin_map

from .actions import Action, load_actions
from .engine import Engine, StartRefused
from .errors import UserError
from .store import Store, StoreError

#: After a freeze the board plays on to the planned end; this much more shows it settled.
FREEZE_TAIL_S = 1.0


@dataclass
class RunResult:
    exit_code: int
    summary: dict[str, Any] | None
    reasons: list[str]


def _check_writable(path: Path, what: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError(f"{path}: the {what} path is a directory")
    if not folder.is_dir():
        raise UserError(f"{path}: cannot write the {what}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{path}: cannot write the {what}: permission denied")


def run_session(*, prescription_path: str, db_path: str, trace_path: str,
                actions_path: str | None = None, virtual_time: bool = False,
                allow_unsigned: bool = False, caregiver_unlocked: bool = False,
                trust_dir: str | None = None, err: TextIO = sys.stderr) -> RunResult:
    """Run one session; every input is checked before the first pulse."""
    from schedules.validate import PrescriptionError, load_prescription

    try:
        rx = load_prescription(prescription_path)
    except PrescriptionError as e:
        return RunResult(2, None, [f"{prescription_path}: {p}" for p in e.problems])
    actions: list[Action] = []
    if actions_path is not None:
        actions = load_actions(actions_path, channels=len(rx.channels), blocks=len(rx.blocks))
    trace = Path(trace_path)
    _check_writable(trace, "trace")
    try:
        store = Store.open(db_path)
    except StoreError as e:
        raise UserError(str(e)) from None
    trust = None
    if trust_dir is not None:
        from schedules.signing import TrustStore
        trust = TrustStore(trust_dir)

    from hw.driver import Stimulator, install_sigterm_handler
    from hw.sim import SimBoard, SimServer

    clock = VirtualClock() if virtual_time else RealClock()
    pins = load_pin_map()
    board = SimBoard(pins=pins, clock=clock)
    server = SimServer(board, host="127.0.0.1", port=0)
    server.start()
    stim = None
    previous_handler = None
    try:
        stim = Stimulator(pins=pins, clock=clock, host="127.0.0.1", port=server.port,
                          caps_ma=tuple(ch.max_ma for ch in rx.channels))
        if threading.current_thread() is threading.main_thread():
            # SIGTERM: the driver's safe stop, then exit 143 (the trace is still written)
            previous_handler = install_sigterm_handler(stim)
        engine = Engine(prescription=rx, board=stim, store=store, clock=clock, trust=trust,
                        allow_unsigned=allow_unsigned)
        if not virtual_time:
            # The button's callback reacts at once in real time; in virtual time the loop
            # polls it at the same virtual instant, which keeps runs deterministic.
            stim.on_estop = lambda: engine.estop("button")
        try:
            session_id = engine.start(caregiver_unlocked=caregiver_unlocked, threaded=False)
        except StartRefused as refused:
            return RunResult(2, None, refused.reasons)
        for action in actions:
            engine.schedule_at(action.t, _action_handler(action, engine, board))
        engine.run()
        state = engine.state
        frozen = not state.phase.ended
        if frozen:
            # The app "hangs": the board plays on to the planned end on its own. What is
            # left of the plan counts from now (pauses moved the end later).
            clock.sleep_until(clock.now() + state.left_s + FREEZE_TAIL_S)
        board.write_trace(trace)
        if engine.log_error is not None:
            # The output went off at once; the person must hear that the log is incomplete.
            raise UserError(str(engine.log_error), exit_code=1)
        if frozen:
            # As the next start of the app would: the session left open becomes interrupted.
            store.close()
            store = Store.open(db_path)
        session = store.session(session_id)
        summary = {
            "session_id": session_id,
            "status": session["status"],
            "contractions": [ch["contractions"] for ch in session["channels"]],
            "planned_contractions": session["planned_contractions"],
            "peak_ma": [ch["peak_ma"] for ch in session["channels"]],
            "events": len(session["events"]),
        }
        return RunResult(0, summary, [])
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
        if stim is not None:
            with contextlib.suppress(Exception):
                stim.close()
        if not trace.exists():
            with contextlib.suppress(Exception):
                board.write_trace(trace)
        server.stop()
        store.close()


def _action_handler(action: Action, engine: Engine, board: Any) -> Callable[[], None]:
    args = action.args

    def handle() -> None:
        try:
            if action.do == "intensity":
                engine.request_intensity(args["channel"], float(args["ma"]))
            elif action.do == "set":
                engine.set_param(args["block"], args["param"], args["value"])
            elif action.do == "pause":
                engine.pause()
            elif action.do == "resume":
                engine.resume()
            elif action.do == "stop":
                engine.stop()
            elif action.do == "estop":
                board.press_estop()
                engine.check_now()
            elif action.do == "estop_release":
                board.release_estop()
                engine.note("estop_release")
            elif action.do == "lead_off":
                board.set_lead(args["channel"], False)
                engine.check_now()
            elif action.do == "lead_on":
                board.set_lead(args["channel"], True)
                engine.check_now()
            elif action.do == "freeze":
                engine.freeze()
        except ValueError:
            pass  # the engine refused and logged it; the script goes on, as a patient would
    return handle
