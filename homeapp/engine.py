"""The session engine: a state machine that runs a prescription on a board under a clock.

Pure Python: it imports neither Kivy nor pigpio nor anything of `hw/`. Its collaborators
are typed by the seams of `homeapp.ports`: a `Board` (`hw.driver.Stimulator`, against
pigpiod or the simulator), a `Store` (`homeapp.store.Store`), a `Clock` (`hw.clock`'s).

The engine composes parts with one job each (`homeapp.session`): the start policy and
its refusals, the timeline (the plan's steps, the cursor, the contraction windows,
replanning), the intensity ramp, the heartbeat and the watchdog's lapse, the alerts, and
the session's log. The engine holds the one lock, runs the loop, talks to the board and
calls the parts in order.

Fence 2 of the design lives here: every request outside the prescription is refused and
logged. The engine's own loop drives the board's heartbeat, so an engine that hangs lets
the board's watchdog cut the output within 250 ms.

Threads: the UI calls the public methods from its thread; the loop runs in the engine's
thread (`start()`), or in the caller's (`start(threaded=False)` then `run()`, as the
headless runner does in virtual time).

Time: the session's timeline (steps, contraction windows, wake-ups, ticks, timers) is
integer µs, read from the clock in one place (`SessionLog.now_us`); seconds appear only
where a time is written out (the log, the state the UI renders). No two times are ever
compared as floats, so no rounding can leave an edge unpassed. One re-entrant lock guards
all state; safety commands (stop, pause, e-stop) act on the board at once, in the
caller's thread.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import itertools
import logging
import threading
import uuid
from typing import Any, Callable, Hashable

from schedules.adherence import EARLY_ABORT_S, ended_early_by_safety_stop, session_ran_s
from schedules.limits import INTENSITY_STEP_MA
from schedules.model import Prescription
from schedules.signing import TrustStore

from .plan import PlanError, Step
from .ports import Board, BoardFault, Clock, LogError, ProgramError, Store, now_utc
from .session.alerts import (AlertDesk, alert_open, at_cap, contact_missing, estop_pressed,
                             not_running, param_range)
from .session.contacts import Contacts
from .session.eventlog import ContractionTally, SessionLog, seconds
from .session.heartbeat import HEARTBEAT_LAPSE_US, TICK_US, Heartbeat
from .session.intensity import IntensityRamp
from .session.start_policy import CANNOT_RUN, StartPolicy
from .session.timeline import Timeline
from .state import AlertKind, ChannelState, EngineState, EventKind as E, Phase, WindowState

__all__ = ["Engine", "StartRefused", "ProgramFault", "CANNOT_RUN", "WindowState", "TICK_US",
           "MAX_PAUSE_US", "HEARTBEAT_LAPSE_US", "EARLY_ABORT_S"]

log = logging.getLogger(__name__)

#: A session paused this long ends (stopped): nobody is there to resume it, and a patient
#: should not sit for longer with the electrodes on and the program unfinished.
MAX_PAUSE_US = 600_000_000

_s = seconds


class StartRefused(Exception):
    """A session may not start; `reasons` says why, each as a person reads it."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("; ".join(reasons))


class ProgramFault(BoardFault):
    """The board cannot be given this program (the planner or the waveform compiler
    refused a step): a bug for any prescription the validator accepts, and still never a
    crash. Before the start it is a refusal; during a session it ends it with a fault."""


class Engine:
    """Runs one session of `prescription` on `board`, logging to `store`.

    `trust`: the trust store the prescription's signature is checked against;
    `allow_unsigned`: admit an unsigned prescription (simulation and tests only);
    `wall_clock`: the date and time the log and the schedule use;
    `still_active`: False once the device has installed another prescription than this
    one (the start is then refused); None: the prescription is not the device's own (a
    file run headless)."""

    def __init__(self, *, prescription: Prescription, board: Board, store: Store, clock: Clock,
                 trust: TrustStore | None = None, allow_unsigned: bool = False,
                 wall_clock: Callable[[], dt.datetime] = now_utc,
                 still_active: Callable[[], bool] | None = None) -> None:
        self.rx = prescription
        self.board = board
        self.store = store
        self.clock = clock
        self.trust = trust
        self.allow_unsigned = allow_unsigned
        self.wall_clock = wall_clock
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[str, dict], None]] = []
        self._timers: list[tuple[int, int, Callable[[], None]]] = []  # (clock µs, seq, fn)
        self._timer_seq = itertools.count()
        self._phase = Phase.READY
        self._end_reason = ""
        self._frozen = False
        self._paused_at_us = 0
        self._armed_spec: Hashable | None = None  # the step the board holds armed
        labels = [ch.label for ch in prescription.channels]
        self._contacts = Contacts(labels)
        # the parts
        self._log_ = SessionLog(store=store, clock=clock)
        self._tally = ContractionTally(self._log_, len(labels))
        self._timeline = Timeline(prescription.blocks, len(labels))
        self._ramp = IntensityRamp([(ch.label, ch.max_ma) for ch in prescription.channels],
                                   write=self._write_amplitude)
        self._pulse = Heartbeat(watchdog_ms=board.watchdog_ms)
        self._alerts = AlertDesk()
        self._policy = StartPolicy(rx=prescription, store=store, board=board, trust=trust,
                                   allow_unsigned=allow_unsigned, wall_clock=self._wall_now,
                                   program_error=self._check_program,
                                   poll_contacts=self.poll_contacts, channel_labels=labels,
                                   still_active=still_active)
        #: Why this program cannot be played (found while planning or compiling it).
        self._program_error: Exception | None = None
        try:
            self._timeline.set_pending(self._timeline.plan_from(0))
        except (PlanError, ProgramError) as e:
            log.exception("the program cannot be planned")
            self._program_error = e
        #: A write to the log that failed (the session was aborted because of it): a
        #: `homeapp.store.StoreError` from the SQLite log.
        self.log_error: LogError | None = None

    def _wall_now(self) -> dt.datetime:
        return self.wall_clock()  # read late: a test may replace `wall_clock`

    # ----------------------------------------------------------------- observers
    @property
    def _blocks(self) -> list:
        """The blocks as the patient has adjusted them (tests read them)."""
        return self._timeline.blocks

    @property
    def _session_id(self) -> str | None:
        return self._log_.session_id

    @property
    def state(self) -> EngineState:
        """A snapshot of the whole session, for the screen."""
        with self._lock:
            tl = self._timeline
            step = tl.step
            if step is not None and self._phase in (Phase.RUNNING, Phase.PAUSED):
                contracting, phase_left_us, elapsed_us = tl.countdown(
                    self._now_us(), running=self._phase is Phase.RUNNING)
                block = tl.blocks[step.block_index]
                block_label, cycle, cycles = block.label, step.cycle_index, step.cycles_total
            else:
                contracting, phase_left_us = False, 0
                elapsed_us = tl.elapsed_done_us
                block_label, cycle, cycles = "", 0, 0
            return EngineState(
                phase=self._phase, session_id=self._session_id, prescription_id=self.rx.id,
                block_index=tl.block_index, block_label=block_label,
                blocks_total=len(tl.blocks), cycle_index=cycle, cycles_total=cycles,
                contracting=contracting, phase_left_s=_s(phase_left_us),
                elapsed_s=_s(elapsed_us), total_s=_s(tl.planned_total_us()),
                channels=tuple(self._channel_state(i) for i in range(len(self._ramp))),
                alert=self._alerts.alert, notice=self._alerts.notice, end_reason=self._end_reason)

    def _channel_state(self, i: int) -> ChannelState:
        lv = self._ramp[i]
        return ChannelState(index=i, label=lv.label, max_ma=lv.max_ma, target_ma=lv.target_ma,
                            set_ma=lv.set_ma, previous_ma=lv.previous_ma, contact=self._contacts.ok[i],
                            contracting=self._timeline.contracting[i],
                            contractions_done=self._tally.done[i], peak_ma=lv.session_peak_ma)

    def add_listener(self, fn: Callable[[str, dict], None]) -> None:
        """`fn(kind, detail)` on "contraction_start", "rest_start", "alert", "ended"."""
        self._listeners.append(fn)

    def _emit(self, event: str, /, **detail: Any) -> None:
        for fn in list(self._listeners):
            try:
                fn(event, detail)
            except Exception:  # a broken listener must never stop the session
                log.exception("engine listener failed on %s", event)

    # ----------------------------------------------------------------- logging
    def _now_us(self) -> int:
        """The clock's now in whole µs: the one place the timeline reads the clock."""
        return self._log_.now_us()

    def _log(self, kind: str, t: float | None = None, **detail: Any) -> None:
        self._log_.event(kind, t, **detail)

    @property
    def under_way(self) -> bool:
        """A session is running or paused: a press of the e-stop has one to abort. Read
        without the lock (one attribute), so the board's callback thread never waits."""
        return self._phase in (Phase.RUNNING, Phase.PAUSED)

    @property
    def ended(self) -> bool:
        """The session has ended (or was never started and cannot be): read without the
        lock, like `under_way`. It turns true once the output is off, a moment before the
        end is in the log and the log's session lock is let go (an install waits for that)."""
        return self._phase.ended

    @property
    def session_clock_start(self) -> float:
        """The clock time (seconds) of the session's t = 0."""
        return _s(self._log_.t0_us)

    def note(self, kind: str, **detail: Any) -> None:
        """Log something that happened outside the engine (e.g. the e-stop released)."""
        with self._lock:
            self._log(kind, **detail)

    def note_report_skipped(self, *, comment: str | None = None) -> None:
        """The patient touched Skip on the After screen (pain and effort not answered)."""
        self.note(E.REPORT_SKIPPED, answered=False, comment=comment)

    # ----------------------------------------------------------------- before the start
    def poll_contacts(self) -> tuple[bool, ...]:
        """Electrode contact per channel, read from the board now."""
        with self._lock:
            return self._contacts.poll(self.board.contact)

    def start_refusals(self, *, caregiver_unlocked: bool = False) -> list[str]:
        """Every reason this session may not start now (empty: it may)."""
        return self._policy.refusals(caregiver_unlocked=caregiver_unlocked)

    def _check_program(self) -> Exception | None:
        """The program planned and compiled, step by step, before any pulse: a step the
        board could not be given is found here, not in the middle of a session."""
        if self._program_error is None:
            try:
                for step in self._timeline.pending:
                    self._compile(step.spec)
            except ProgramFault as e:
                self._program_error = e.__cause__ or e
        return self._program_error

    def _compile(self, spec: Hashable) -> None:
        """The board compiles `spec` (each once) now; a refusal is a ProgramFault."""
        try:
            self.board.compile(spec)
        except ProgramError as e:
            log.exception("a step of the program cannot be compiled")
            raise ProgramFault(f"{CANNOT_RUN} ({e})") from e

    # ----------------------------------------------------------------- start and loop
    def start(self, *, caregiver_unlocked: bool = False, threaded: bool = True) -> str:
        """Start the session (intensity zero on every channel) or raise StartRefused."""
        with self._lock:
            if self._phase is not Phase.READY:
                raise StartRefused([f"a session cannot start from the {self._phase.value} state"])
            reasons = self.start_refusals(caregiver_unlocked=caregiver_unlocked)
            if reasons:
                self._policy.record_refused(reasons)
                raise StartRefused(reasons)
            earlier = self._policy.earlier_sessions()
            session_id = f"s-{uuid.uuid4().hex[:12]}"
            t0_us = self._now_us()
            self.store.save_prescription(self.rx)
            # Checked again once the session lock keeps every install out: one landing
            # since the refusals above must not start the program it replaced.
            self.store.start_session(session_id=session_id, prescription_id=self.rx.id,
                                     started_at=self.wall_clock(),
                                     planned_contractions=self.rx.planned_contractions,
                                     channels=len(self._contacts), check=self._refuse_if_replaced)
            self._log_.open(session_id=session_id, t0_us=t0_us)   # events go to the session now in the log
            with self._fault_aborts():
                self._log(E.START, caregiver_unlocked=caregiver_unlocked,
                          planned_contractions=self.rx.planned_contractions,
                          planned_s=_s(self._timeline.planned_total_us()))
                if earlier and ended_early_by_safety_stop(earlier[-1]):
                    self._log(E.RESTART_ALLOWED, previous_session=earlier[-1]["id"],
                              previous_status=earlier[-1]["status"],
                              previous_ran_s=session_ran_s(earlier[-1]), early_abort_s=EARLY_ABORT_S)
                # Fence 3: the driver clamps to this prescription's max_ma whatever it is asked.
                self.board.set_max_ma(tuple(lv.max_ma for lv in self._ramp.levels))
                for lv in self._ramp.levels:
                    lv.target_ma = lv.set_ma = 0.0
                    self.board.set_amplitude(lv.index, 0.0)
                self._phase = Phase.RUNNING
                now_us = self._now_us()
                self._pulse.restart(now_us)
                self._ramp.restart(now_us)
                self._heartbeat()
                self._begin_next_step(now_us)
        if threaded:
            self._thread = threading.Thread(target=self.run, name="engine", daemon=True)
            self._thread.start()
        return session_id

    def _refuse_if_replaced(self) -> None:
        reasons = self._policy.replaced_refusals()
        if reasons:
            self._policy.record_refused(reasons)
            raise StartRefused(reasons)

    def schedule_at(self, t: float, fn: Callable[[], None]) -> None:
        """Call `fn` from the loop at session time `t` (the headless runner's actions)."""
        with self._lock:
            heapq.heappush(self._timers, (self._log_.t0_us + round(t * 1_000_000),
                                          next(self._timer_seq), fn))
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the engine's own thread (after `start()`) to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """The loop: until the session ends (or the engine is frozen by a test)."""
        while True:
            with self._lock:
                if self._phase.ended or self._frozen:
                    return
                due = self._next_due()
            self._sleep_until(due)
            with self._lock:
                if self._phase.ended or self._frozen:
                    return
                try:
                    with self._fault_aborts():
                        self._service()
                except (BoardFault, LogError):
                    pass  # the session has ended with a fault; the loop sees it ended
                except Exception as e:  # our own bug: fail safe, then say so
                    log.exception("engine failure")
                    self._abort_fault(e)
                    raise

    @contextlib.contextmanager
    def _fault_aborts(self):
        """A board that cannot be trusted, or a log that cannot be written, ends the session
        with a fault (safe stop first), in a command as in the loop; the error goes on to
        the caller. Hold the lock."""
        try:
            yield
        except (BoardFault, LogError) as e:
            if isinstance(e, LogError):
                self.log_error = e
            self._abort_fault(e)
            raise

    def _sleep_until(self, t_us: int) -> None:
        # A command (pause, stop, a new timer) sets `_wake` so the loop need not sleep on.
        # µs / 1e6 comes back as the same µs through `_now_us` (round trip exact far
        # beyond any session's length), so waking at an edge means being at it.
        self.clock.sleep_until(t_us / 1_000_000, wake=self._wake)
        self._wake.clear()

    def _next_due(self) -> int:
        due = [self._pulse.next_tick_us]
        if self._timers:
            due.append(self._timers[0][0])
        if self._phase is Phase.RUNNING:
            due.extend(self._timeline.due_us(self._now_us()))
        return min(due)

    def _service(self) -> None:
        # At one instant: the timers (the headless runner's actions) first, then the tick
        # (heartbeat, e-stop and contact polls), then the timeline.
        now_us = self._now_us()
        while self._timers and self._timers[0][0] <= now_us:
            _, _, fn = heapq.heappop(self._timers)
            fn()
            if self._phase.ended or self._frozen:
                return
            now_us = self._now_us()  # a timer may have taken time (a stall in a test)
        if self._pulse.due(now_us):
            self._tick(now_us)
            if self._phase.ended:
                return
        if self._phase is Phase.RUNNING:
            self._advance_timeline(now_us)

    def _tick(self, now_us: int) -> None:
        lapse = self._pulse.tick(now_us)
        near_miss = lapse.near_miss and self._session_id is not None
        if near_miss and self._phase is Phase.RUNNING and lapse.cut:
            # As long as the watchdog itself: it may have cut the output mid-contraction,
            # which must not come back at the old level with the heartbeat. Pause.
            near_miss = False
            self._log(E.WATCHDOG, heartbeat_gap_ms=lapse.gap_ms)
            self._alerts.raise_alert(AlertKind.WATCHDOG, detail=f"no heartbeat for {lapse.gap_us / 1000:.0f} ms")
            self._emit("alert", kind="watchdog")
            self.pause(reason="watchdog")
            if self._phase is not Phase.PAUSED:
                return
        self._heartbeat()
        if near_miss:
            # A near miss is logged after the heartbeat: the log's fsync (tens of ms on an
            # SD card) must not be what pushes the gap past the watchdog.
            self._log(E.WATCHDOG, heartbeat_gap_ms=lapse.gap_ms)
        if self.board.estop_pressed():
            self._on_estop("button")
            return
        self._check_contacts()
        if self._phase is Phase.RUNNING:
            self._ramp.step(now_us)
        elif self._phase is Phase.PAUSED and now_us - self._paused_at_us >= MAX_PAUSE_US:
            self._log(E.STOP, by="pause_timeout", paused_s=round(_s(now_us - self._paused_at_us), 3))
            lost = self._contacts.missing()
            if lost:  # contract.md: an electrode lost and not recovered aborts the session
                self._finish(Phase.ABORTED, f"electrode lost on {', '.join(lost)} and not reattached "
                                            f"within {MAX_PAUSE_US / 60_000_000:g} minutes")
            else:
                self._finish(Phase.STOPPED, f"paused for more than {MAX_PAUSE_US / 60_000_000:g} minutes")

    def _heartbeat(self) -> None:
        self.board.heartbeat()
        self._pulse.beat(self._now_us())

    # ----------------------------------------------------------------- the timeline
    def _begin_next_step(self, t_start_us: int) -> None:
        step, new_block = self._timeline.begin_next(t_start_us)
        if step is None:
            self._finish(Phase.COMPLETED, "completed")
            return
        if new_block:
            self._log(E.BLOCK, block=step.block_index, label=self._timeline.blocks[step.block_index].label)
        self._play_step()

    def _play_step(self) -> None:
        """Arm the current step on the board and start it (one cycle queued, never more)."""
        step = self._timeline.step
        assert step is not None
        spec = step.spec
        if self._armed_spec != spec:
            self._compile(spec)
            self.board.arm(spec)
            self._armed_spec = spec
        self._timeline.rewind_windows()
        self.board.start()
        self._timeline.step_started = True

    def _advance_timeline(self, now_us: int) -> None:
        next_at = self._timeline.advance(now_us, self._on_edge)
        if next_at is not None:
            self._begin_next_step(next_at)

    def _on_edge(self, channel: int, begins: bool, t_us: int, step: Step) -> None:
        t_session = self._log_.session_us(t_us)
        if begins:
            if step.starts_contraction or not self._tally.is_open(channel):
                self._tally.begin(channel, t_session, self._ramp[channel].set_ma)
                self._emit("contraction_start", channel=channel)
        elif step.ends_contraction:
            self._tally.end(channel, t_session, completed=True)
            self._emit("rest_start", channel=channel)

    def _cut_contractions(self) -> None:
        """A contraction interrupted by pause, stop or abort is logged as cut short; the
        interrupted cycle is played again from its start on resume."""
        now_us = self._now_us()
        for ch in self._timeline.cut(now_us):
            self._tally.end(ch, self._log_.session_us(now_us), completed=False)

    # ----------------------------------------------------------------- intensity
    def _write_amplitude(self, channel: int, ma: float) -> float:
        set_ma = float(self.board.set_amplitude(channel, ma))
        if self._timeline.contracting[channel]:
            self._tally.saw(channel, set_ma)
        return set_ma

    def _check_channel(self, channel: int) -> None:
        n = len(self._ramp)
        if not isinstance(channel, int) or not 0 <= channel < n:
            raise ValueError(f"channel {channel!r} does not exist (this prescription has "
                             f"channels 0 to {n - 1})")

    def request_intensity(self, channel: int, ma: float) -> float:
        """The patient asks for `ma` on `channel`: above the cap is refused and logged;
        lowering acts at once; raising rises at a limited rate. Returns the new target."""
        with self._lock:
            self._check_channel(channel)
            lv = self._ramp[channel]
            if self._phase is not Phase.RUNNING:
                self._alerts.say(not_running(self._phase.value))
                self._log(E.REFUSED, what="intensity", channel=channel, asked_ma=ma,
                          reason=f"session is {self._phase.value}")
                return lv.target_ma
            if not isinstance(ma, (int, float)) or isinstance(ma, bool) or ma != ma or ma < 0:
                self._log(E.REFUSED, what="intensity", channel=channel, asked_ma=str(ma),
                          reason="not a current in mA")
                raise ValueError(f"intensity must be a number of mA from 0 to {lv.max_ma:g}, got {ma!r}")
            if ma > lv.max_ma:
                self._alerts.say(at_cap(channel, lv.label, lv.max_ma))
                self._log(E.REFUSED, what="intensity", channel=channel, asked_ma=ma, limit_ma=lv.max_ma)
                ma = lv.max_ma
                if lv.target_ma >= ma:
                    return lv.target_ma
            else:
                self._alerts.say(None)
            target = self._ramp.set_target(channel, ma)
            self._log(E.INTENSITY, channel=channel, ma=target)
            if lv.target_ma < lv.set_ma:
                with self._fault_aborts():
                    self._ramp.apply(channel, lv.target_ma)  # lowering acts at once
            self._wake.set()
            return lv.target_ma

    def increase(self, channel: int) -> float:
        """One step up on `channel` (the + button)."""
        with self._lock:
            self._check_channel(channel)
            return self.request_intensity(channel, round(self._ramp[channel].target_ma + INTENSITY_STEP_MA, 3))

    def decrease(self, channel: int) -> float:
        """One step down on `channel` (the - button)."""
        with self._lock:
            self._check_channel(channel)
            return self.request_intensity(
                channel, max(0.0, round(self._ramp[channel].target_ma - INTENSITY_STEP_MA, 3)))

    def restore(self, channel: int) -> float:
        """One touch back to the level before the last pause or electrode loss, by a ramp."""
        with self._lock:
            self._check_channel(channel)
            lv = self._ramp[channel]
            if self._phase is not Phase.RUNNING or lv.previous_ma <= lv.target_ma:
                return lv.target_ma
            target = self.request_intensity(channel, min(lv.previous_ma, lv.max_ma))
            self._ramp.restore_rate(channel)
            return target

    # ----------------------------------------------------------------- adjustments
    def set_param(self, block_index: int, param: str, value: float) -> None:
        """A patient adjustment of a block value, only within the prescription's range."""
        with self._lock:
            blocks = self._timeline.blocks
            if not isinstance(block_index, int) or not 0 <= block_index < len(blocks):
                msg = (f"block {block_index!r} does not exist (blocks 0 to {len(blocks) - 1})")
                self._log(E.REFUSED, what="set", block=block_index, param=param, value=value, reason=msg)
                raise ValueError(msg)
            block = blocks[block_index]
            try:
                new_block = block.with_value(param, value)
            except ValueError as e:
                self._alerts.say(param_range(block_index, param, str(e)))
                rng = block.ranges.get(param)
                self._log(E.REFUSED, what="set", block=block_index, param=param, value=value,
                          limit=None if rng is None else [rng.min, rng.max], reason=str(e))
                raise
            under_way = self._phase in (Phase.RUNNING, Phase.PAUSED)
            current = self._timeline.block_index
            if under_way and (block_index < current or (block_index == current and block.continuous)):
                msg = (f"block {block_index} ({block.label}) is already over"
                       if block_index < current else
                       f"block {block_index} ({block.label}) runs without rest: its values can "
                       f"change only before it begins")
                self._log(E.REFUSED, what="set", block=block_index, param=param, value=value, reason=msg)
                raise ValueError(msg)
            blocks[block_index] = new_block
            try:
                if self._timeline.replan_after_set(block_index, block, under_way=under_way,
                                                   ended=self._phase.ended):
                    self._program_error = None  # the new plan is checked again before the start
            except (PlanError, ProgramError) as e:  # never for a valid range: still no crash
                blocks[block_index] = block
                log.exception("the adjusted program cannot be planned")
                msg = f"{CANNOT_RUN} with {param} = {value!r}"
                self._alerts.say(param_range(block_index, param, msg))
                self._log(E.REFUSED, what="set", block=block_index, param=param, value=value,
                          reason=f"{msg} ({e})")
                raise ValueError(msg) from e
            self._log(E.SET, block=block_index, param=param, value=value)

    # ----------------------------------------------------------------- pause, stop, alerts
    def pause(self, *, reason: str = "patient") -> None:
        """Pause (the patient's, an electrode lost, the watchdog): output off, intensity to zero."""
        with self._lock:
            if self._phase is not Phase.RUNNING:
                return
            # Enable low, wave stopped, legs low, DAC zero; the pulse under way ends
            # balanced first, unless the watchdog (which may have cut it) is the reason.
            if not self._safe_stop(balanced=reason != "watchdog"):
                return
            self._cut_contractions()
            self._ramp.zero_all()
            self._phase = Phase.PAUSED
            self._paused_at_us = self._now_us()
            self._log(E.PAUSE, reason=reason)
            self._wake.set()

    def resume(self) -> None:
        """Go on after a pause: refused while an alert needs OK or an electrode is off."""
        with self._lock:
            if self._phase is not Phase.PAUSED:
                return
            if self._alerts.needs_ack:
                self._alerts.say(alert_open())
                self._log(E.REFUSED, what="resume", reason="an alert needs acknowledging")
                return
            missing = self._contacts.missing()
            if missing:
                labels = ", ".join(missing)
                self._alerts.say(contact_missing(labels))
                self._log(E.REFUSED, what="resume", reason=f"no electrode contact on {labels}")
                return
            self._alerts.clear(AlertKind.LEAD_OFF, AlertKind.WATCHDOG)
            now_us = self._now_us()
            self._phase = Phase.RUNNING
            with self._fault_aborts():
                self._log(E.RESUME)
                self._pulse.restart(now_us)
                self._ramp.restart(now_us)
                self._heartbeat()
                if self._timeline.step is None:
                    self._begin_next_step(now_us)
                else:
                    self._timeline.replay_from(now_us)
                    self._play_step()
            self._wake.set()

    def stop(self, *, by: str = "patient") -> None:
        """Stop the session now. Always works, in any phase."""
        with self._lock:
            if self._safe_stop(balanced=True) and self._phase in (Phase.RUNNING, Phase.PAUSED):
                self._cut_contractions()
                self._log(E.STOP, by=by)
                self._finish(Phase.STOPPED, f"stopped by the {by}", stop_board=False)  # stopped above
            self._wake.set()

    def estop(self, source: str = "button") -> None:
        """The e-stop (from the board's callback or a poll): abort, never resume."""
        with self._lock:
            self._on_estop(source)

    def _on_estop(self, source: str) -> None:
        # The board has already cut the output in hardware; this is the software's half:
        # the safe stop first, then the log. The press is logged even when the safe stop
        # fails (a dead command link), before the fault that failure aborts with.
        error = self._board_stop()
        if self._phase in (Phase.RUNNING, Phase.PAUSED):
            self._cut_contractions()
            self._ramp.zero_all()
            self._alerts.raise_alert(AlertKind.ESTOP, detail=f"e-stop pressed ({source})", needs_ack=True)
            if error is None:
                self._log(E.ESTOP, source=source)
            else:
                self._log(E.ESTOP, source=source, safe_stop_failed=str(error))
            self._emit("alert", kind="estop")
            if error is None:
                self._finish(Phase.ABORTED, "e-stop pressed", stop_board=False)  # stopped above
        if error is not None:
            self._abort_fault(error, stopped=True)
        self._wake.set()

    def _check_contacts(self) -> None:
        for i, contact in self._contacts.changes(self.board.contact):
            if self._session_id is None or self._phase.ended:
                continue
            if not contact:
                self._on_lead_off(i)
            else:
                self._log(E.LEAD_ON, channel=i)
                if self._alerts.is_up(AlertKind.LEAD_OFF) and self._contacts.all_ok:
                    self._alerts.clear(AlertKind.LEAD_OFF)

    def _on_lead_off(self, channel: int) -> None:
        # That channel's output off once its pulse under way has ended, then the whole
        # session pauses with an alert.
        self.board.set_amplitude(channel, 0.0, balanced=True)
        self._log(E.LEAD_OFF, channel=channel)
        self._alerts.raise_alert(AlertKind.LEAD_OFF, channel=channel,
                                 detail=f"electrode contact lost on {self._ramp[channel].label}")
        self._emit("alert", kind="lead_off", channel=channel)
        if self._phase is Phase.RUNNING:
            self.pause(reason="lead_off")

    def check_now(self) -> None:
        """Poll the e-stop and the electrodes at once (after a change on the board)."""
        with self._lock:
            if self._phase.ended or self._frozen:
                return
            with contextlib.suppress(BoardFault, LogError), self._fault_aborts():
                if self.board.estop_pressed():
                    self._on_estop("button")
                    return
                self._check_contacts()

    def _board_stop(self, *, balanced: bool = False) -> Exception | None:
        """The board's safe stop; the error if it failed (the driver tried every step
        before it raised). `balanced`: the pulse under way finishes first (the driver's)."""
        try:
            self.board.stop(balanced=balanced)
            return None
        except Exception as e:
            log.exception("safe stop failed")
            return e

    def _safe_stop(self, *, balanced: bool = False) -> bool:
        """The board's safe stop. If it fails the board cannot be trusted: the session
        aborts with a fault (the watchdog cuts the output once heartbeats stop)."""
        error = self._board_stop(balanced=balanced)
        if error is not None:
            self._abort_fault(error, stopped=True)
        return error is None

    def _abort_fault(self, error: Exception, *, stopped: bool = False) -> None:
        if not stopped:
            self._board_stop()
        if self._phase.ended:
            return
        self._alerts.raise_alert(AlertKind.FAULT, detail=str(error), needs_ack=True)
        if self._session_id is not None:
            try:
                self._cut_contractions()
                self._log(E.FAULT, error=str(error), type=type(error).__name__)
            except Exception:
                log.exception("could not log the fault")
        self._emit("alert", kind="fault")
        self._finish(Phase.ABORTED, f"fault: {error}", stop_board=False)

    def acknowledge(self) -> bool:
        """OK on a whole-screen alert. An e-stop alert stays while the button is still
        pressed (the notice `estop_pressed` says so); returns whether the alert is gone."""
        with self._lock:
            alert = self._alerts.alert
            if alert is not None and alert.needs_ack:
                if alert.kind is AlertKind.ESTOP and self._estop_still_pressed():
                    self._alerts.say(estop_pressed())
                    self._log(E.REFUSED, what="acknowledge", alert="estop", reason="e-stop still pressed")
                    return False
                self._log(E.ACKNOWLEDGE, alert=alert.kind.value)
            self._alerts.acknowledged()
            return True

    def _estop_still_pressed(self) -> bool:
        try:
            return bool(self.board.estop_pressed())
        except BoardFault:
            return False  # the output is off either way; a dead board must not trap the alert

    def freeze(self) -> None:
        """Test hook (the `freeze` action): the app hangs from now on. No heartbeat, no
        command, nothing logged: the board's watchdog must cut the output by itself."""
        with self._lock:
            self._frozen = True
            self._wake.set()

    def _finish(self, phase: Phase, reason: str, *, stop_board: bool = True) -> None:
        if stop_board and not self._safe_stop():
            return  # _safe_stop has finished the session as aborted with a fault
        self._timeline.end()
        self._alerts.session_ended()
        self._phase = phase
        self._end_reason = reason
        if self._session_id is not None:
            try:
                self._log(E.END, status=phase.value, reason=reason)
                self._log_.close(status=phase.value, ended_at=self.wall_clock())
            except LogError:  # the output is already off; the open session is found next start
                log.exception("the log could not record the end of the session")
        self._emit("ended", status=phase.value, reason=reason)

    # ----------------------------------------------------------------- after
    def save_report(self, *, pain: int, effort: float, comment: str | None = None) -> None:
        """The patient's answers on the After screen (only once the session has ended)."""
        with self._lock:
            if self._session_id is None or not self._phase.ended:
                raise ValueError("a report can be saved only after a session has ended")
            self.store.save_report(self._session_id, pain=pain, effort=effort, comment=comment)
