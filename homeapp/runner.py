"""`homeapp session run`: one whole session, headless, on the simulated board.

The simulated pigpiod runs in this process on a free loopback port and the real driver
talks to it over pigpio's socket protocol, exactly as on a Pi. With `virtual_time` the
engine's loop owns a discrete-event clock, so a 20-minute session takes seconds and the
same prescription and actions give a byte-identical trace.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from hw.clock import RealClock, VirtualClock

from .actions import AFTER_ACTIONS, WORLD_ACTIONS, Action, load_actions
from .config import Config, load_config
from .device import open_device, simulated_config
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
                trust_dir: str | None = None, err: TextIO = sys.stderr,
                start_at: dt.datetime | None = None, config: Config | None = None) -> RunResult:
    """Run one session; every input is checked before the first pulse. `start_at` (an
    aware datetime, with `virtual_time`): the session's wall-clock start, so a history
    of sessions on past or future days can be made headless; the prescription's dates
    and the schedule are judged as of then. `config` (default: the configured one): its
    pin map and board constants are the simulated board's and the driver's; the log is
    `db_path` and the trust store `trust_dir` (None: no trust store)."""
    from schedules.validate import PrescriptionError, load_prescription

    if start_at is not None and not virtual_time:
        raise UserError("--start-at needs --virtual-time (the session's clock must be the simulated one)")
    try:
        rx = load_prescription(prescription_path,
                               today=start_at.astimezone().date() if start_at is not None else None)
    except PrescriptionError as e:
        return RunResult(2, None, [f"{prescription_path}: {p}" for p in e.problems])
    actions: list[Action] = []
    if actions_path is not None:
        actions = load_actions(actions_path, channels=len(rx.channels), blocks=len(rx.blocks))
    trace = Path(trace_path)
    _check_writable(trace, "trace")
    config = simulated_config(config or load_config(None), db_path=Path(db_path),
                              **({"trust_dir": Path(trust_dir)} if trust_dir is not None else {}))
    clock = VirtualClock() if virtual_time else RealClock()
    # SIGTERM during the run: the driver's safe stop, then exit 143 (the trace is still written)
    device = open_device(config, clock=clock, max_ma=tuple(ch.max_ma for ch in rx.channels),
                         trace_max_rows=None, trusted_keys=trust_dir is not None, device_key=False)
    board = device.sim_board
    try:
        wall: dict[str, Any] = {}
        if start_at is not None:
            t_start = clock.now()
            wall["wall_clock"] = lambda: start_at + dt.timedelta(seconds=clock.now() - t_start)
        # The button's callback reacts at once in real time; in virtual time the loop
        # polls it at the same virtual instant, which keeps runs deterministic.
        engine = device.new_engine(rx, allow_unsigned=allow_unsigned, estop_at_once=not virtual_time,
                                   **wall)
        try:
            session_id = engine.start(caregiver_unlocked=caregiver_unlocked, threaded=False)
        except StartRefused as refused:
            return RunResult(2, None, refused.reasons)
        except StoreError as e:  # e.g. the disk filled between opening the log and starting
            raise UserError(str(e)) from None
        script = ActionScript([a for a in actions if a.do not in AFTER_ACTIONS], engine=engine, board=board)
        script.schedule()
        engine.run()
        state = engine.state
        frozen = not state.phase.ended
        if frozen:
            # The app "hangs": the board plays on to the planned end on its own. What is
            # left of the plan counts from now (pauses moved the end later). The physical
            # world does not hang with it: its actions still reach the board.
            end = clock.now() + state.left_s + FREEZE_TAIL_S
            script.play_world_until(clock, end)
            clock.sleep_until(end)
        board.write_trace(trace)
        if engine.log_error is not None:
            # The output went off at once; the person must hear that the log is incomplete.
            raise UserError(str(engine.log_error), exit_code=1)
        if not frozen:
            # The After screen's answers, saved as it saves them (a frozen app shows none).
            for action in actions:
                if action.do == "report":
                    engine.save_report(pain=action.args["pain"], effort=action.args["effort"],
                                       comment=action.args.get("comment") or None)
        if frozen:
            # As the next start of the app would: the session left open becomes interrupted.
            device.store.close()
            try:
                device.store = Store.open(db_path)
            except StoreError as e:
                raise UserError(str(e)) from None
        session = device.store.session(session_id)
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
        device.close()
        if not trace.exists():
            with contextlib.suppress(Exception):
                board.write_trace(trace)


class ActionScript:
    """Plays an actions file against a session: the app's own commands through the engine,
    the actions that stand for the physical world (`WORLD_ACTIONS`: the e-stop button,
    the electrodes) on the simulated board first, whatever the app is doing.

    While the app runs, every action is a timer of the engine's loop, so a run in virtual
    time is deterministic. After a `freeze` the engine's loop has stopped: the app's
    commands are lost with it (the app hangs), the world's actions are played by
    `play_world_until` on the clock, straight onto the board."""

    def __init__(self, actions: list[Action], *, engine: Engine, board: Any) -> None:
        self.engine = engine
        self.board = board
        self.app_frozen = False
        self._left = list(actions)  # in time order; each leaves the list as it is played

    def schedule(self) -> None:
        """Every action as a timer of the engine's loop."""
        for action in list(self._left):
            self.engine.schedule_at(action.t, self._timer(action))

    def _timer(self, action: Action) -> Callable[[], None]:
        def fire() -> None:
            if action in self._left:
                self._left.remove(action)
                self.perform(action)
        return fire

    def play_world_until(self, clock: Any, end: float) -> None:
        """The world's actions not played yet, each at its time up to `end` (clock time),
        onto the board alone: the app is frozen and hears nothing."""
        t0 = self.engine.session_clock_start
        for action in list(self._left):
            if action.do not in WORLD_ACTIONS or t0 + action.t > end:
                continue
            self._left.remove(action)
            clock.sleep_until(t0 + action.t)
            self._touch_board(action)

    def perform(self, action: Action) -> None:
        if action.do in WORLD_ACTIONS:
            self._touch_board(action)
            if not self.app_frozen:
                self._tell_engine(action)
            return
        if self.app_frozen:
            return
        if action.do == "freeze":
            self.app_frozen = True
            self.engine.freeze()
            return
        _command(action, self.engine)

    def _touch_board(self, action: Action) -> None:
        if action.do == "estop":
            self.board.press_estop()
        elif action.do == "estop_release":
            self.board.release_estop()
        elif action.do == "lead_off":
            self.board.set_lead(action.args["channel"], False)
        elif action.do == "lead_on":
            self.board.set_lead(action.args["channel"], True)

    def _tell_engine(self, action: Action) -> None:
        if action.do == "estop_release":
            self.engine.note("estop_release")
        else:
            self.engine.check_now()


def _command(action: Action, engine: Engine) -> None:
    """One of the app's own commands, as the touchscreen would give it."""
    args = action.args
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
    except ValueError:
        pass  # the engine refused and logged it; the script goes on, as a patient would
