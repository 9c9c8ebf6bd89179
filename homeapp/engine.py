"""The session engine: a state machine that runs a prescription on a board under a clock.

Pure Python: it imports neither Kivy nor pigpio. The board is anything with the
`hw.driver.Stimulator` methods (the real driver against pigpiod or the simulator), the
clock is `hw.clock`'s, the log is `homeapp.store.Store`.

Fence 2 of the design lives here: every request outside the prescription is refused and
logged. The engine's own loop drives the board's heartbeat, so an engine that hangs lets
the board's watchdog cut the output within 250 ms.

Threads: the UI calls the public methods from its thread; the loop runs in the engine's
thread (`start()`), or in the caller's (`start(threaded=False)` then `run()`, as the
headless runner does in virtual time).

Time: the session's timeline (steps, contraction windows, wake-ups, ticks, timers) is
integer µs, read from the clock once per use (`_now_us`); seconds appear only where a
time is written out (the log, the state the UI renders). No two times are ever compared
as floats, so no rounding can leave an edge unpassed. One re-entrant lock guards all state; safety
commands (stop, pause, e-stop) act on the board at once, in the caller's thread.
"""
from __future__ import annotations

import contextlib
import enum
import datetime as dt
import heapq
import itertools
from collections import deque
import logging
import threading
import uuid
from typing import Any, Callable

from hw.clock import Clock
from hw.exc import BoardFault, WaveformError
from hw.waveform import compile_cycle
from schedules.adherence import EARLY_ABORT_S, ended_early_by_safety_stop, schedule_allows, session_ran_s
from schedules.limits import (DEVICE_LIMITS, INTENSITY_RESTORE_MA_PER_S, INTENSITY_RISE_MA_PER_S,
                              INTENSITY_STEP_MA)
from schedules.model import Prescription
from schedules.signing import SIGNATURE_FIELD, SignatureError, verify_prescription

from .plan import PlanError, Step, block_steps
from .store import StoreError, now_utc
from .state import Alert, AlertKind, ChannelState, EngineState, Notice, Phase, Reason

log = logging.getLogger(__name__)

#: The loop's tick: heartbeat edge, e-stop and contact polls, intensity ramp steps.
#: 100 ms keeps the watchdog (250 ms) fed with margin and reacts within a tenth of a second.
TICK_US = 100_000

#: A session paused this long ends (stopped): nobody is there to resume it, and a patient
#: should not sit for longer with the electrodes on and the program unfinished.
MAX_PAUSE_US = 600_000_000

#: A heartbeat gap this long is logged as a near miss of the board's watchdog (250 ms) ...
HEARTBEAT_LAPSE_US = 200_000

_US = 1_000_000


def _s(t_us: int) -> float:
    """µs as the seconds the log and the UI show."""
    return t_us / _US


class StartRefused(Exception):
    """A session may not start; `reasons` says why, each as a person reads it."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("; ".join(reasons))


class ProgramFault(BoardFault):
    """The board cannot be given this program (the planner or the waveform compiler
    refused a step): a bug for any prescription the validator accepts, and still never a
    crash. Before the start it is a refusal; during a session it ends it with a fault."""


#: What the patient reads (and the log keeps) when the device cannot play a program.
CANNOT_RUN = "this device cannot run this program: please call your clinic"


class WindowState(enum.Enum):
    """Where a channel is in the current step's contraction window."""

    PENDING = "pending"   # not begun (or cut short and to be replayed)
    ACTIVE = "active"     # the board is playing its pulses
    DONE = "done"         # over for this step


class _Channel:
    """Mutable per-channel state inside the engine (snapshots are ChannelState)."""

    def __init__(self, index: int, label: str, cap_ma: float) -> None:
        self.index = index
        self.label = label
        self.cap_ma = min(cap_ma, DEVICE_LIMITS["max_ma"].high)
        self.target_ma = 0.0
        self.set_ma = 0.0
        self.previous_ma = 0.0
        self.rise_ma_per_s = INTENSITY_RISE_MA_PER_S
        self.contact = True
        self.contracting = False
        self.window = WindowState.PENDING  # this step's contraction
        self.contraction_start_us: int | None = None  # session time
        self.peak_ma = 0.0
        self.session_peak_ma = 0.0
        self.done = 0

    def snapshot(self) -> ChannelState:
        return ChannelState(index=self.index, label=self.label, cap_ma=self.cap_ma,
                            target_ma=self.target_ma, set_ma=self.set_ma,
                            previous_ma=self.previous_ma, contact=self.contact,
                            contracting=self.contracting, contractions_done=self.done,
                            peak_ma=self.session_peak_ma)


class Engine:
    """Runs one session of `prescription` on `board`, logging to `store`."""

    def __init__(self, *, prescription: Prescription, board: Any, store: Any, clock: Clock,
                 trust: Any = None, allow_unsigned: bool = False,
                 wall_clock: Callable[[], dt.datetime] = now_utc) -> None:
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
        self._blocks = list(prescription.blocks)
        self._channels = [_Channel(i, ch.label, ch.max_ma) for i, ch in enumerate(prescription.channels)]
        self._phase = Phase.READY
        self._session_id: str | None = None
        self._alert: Alert | None = None
        self._notice: Notice | None = None
        self._end_reason = ""
        self._frozen = False
        # Timeline (clock µs). The session's t = _now_us() - _t0_us.
        self._t0_us = 0
        self._pending: deque[Step] = deque()
        self._pending_us = 0          # their total duration (the UI asks for it 20 times a second)
        #: Why this program cannot be played (found while planning or compiling it).
        self._program_error: Exception | None = None
        try:
            self._set_pending(self._plan_from(0))
        except (PlanError, WaveformError) as e:
            log.exception("the program cannot be planned")
            self._program_error = e
        self._block_index = -1
        self._step: Step | None = None
        self._step_t0_us = 0          # nominal start of the current step (no drift)
        self._step_started = False    # the current step is playing on the board
        self._last_begun: Step | None = None  # the step most recently begun (kept after it ends)
        self._armed_spec: Any = None
        self._compiled: dict[Any, Any] = {}
        self._elapsed_done_us = 0     # stimulation time of the steps already finished
        self._next_tick_us = 0
        self._last_ramp_us = 0
        self._paused_at_us = 0
        self._last_heartbeat_us = 0
        #: A write to the log that failed (the session was aborted because of it).
        self.log_error: StoreError | None = None

    # ----------------------------------------------------------------- observers
    @property
    def state(self) -> EngineState:
        with self._lock:
            now_us = self._now_us()
            step = self._step
            if step is not None and self._phase in (Phase.RUNNING, Phase.PAUSED):
                in_step = max(0, now_us - self._step_t0_us) if self._phase is Phase.RUNNING else 0
                contracting = any(ch.contracting for ch in self._channels)
                windows = [w for w in step.windows_us if w is not None]
                if contracting:
                    end = max(b for a, b in windows if a <= in_step) if windows else 0
                    phase_left_us = max(0, end - in_step)
                else:
                    later = [a for a, b in windows if a > in_step]
                    phase_left_us = (min(later) if later else step.duration_us) - in_step
                elapsed_us = self._elapsed_done_us + min(in_step, step.duration_us)
                block = self._blocks[step.block_index]
                block_label, cycle, cycles = block.label, step.cycle_index, step.cycles_total
            else:
                contracting, phase_left_us = False, 0
                elapsed_us = self._elapsed_done_us
                block_label, cycle, cycles = "", 0, 0
            return EngineState(
                phase=self._phase, session_id=self._session_id, prescription_id=self.rx.id,
                block_index=self._block_index, block_label=block_label,
                blocks_total=len(self._blocks), cycle_index=cycle, cycles_total=cycles,
                contracting=contracting, phase_left_s=_s(max(0, phase_left_us)),
                elapsed_s=_s(elapsed_us), total_s=_s(self._planned_total_us()),
                channels=tuple(ch.snapshot() for ch in self._channels),
                alert=self._alert, notice=self._notice, end_reason=self._end_reason)

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
        return round(self.clock.now() * _US)

    def _t(self) -> float:
        """Session time now, in seconds, as the log records it."""
        return _s(self._now_us() - self._t0_us)

    def _log(self, kind: str, t: float | None = None, **detail: Any) -> None:
        if self._session_id is None:
            return
        self.store.add_event(self._session_id, t=self._t() if t is None else t, kind=kind,
                             detail=detail)

    @property
    def session_clock_start(self) -> float:
        """The clock time (seconds) of the session's t = 0."""
        return _s(self._t0_us)

    def note(self, kind: str, **detail: Any) -> None:
        """Log something that happened outside the engine (e.g. the e-stop released)."""
        with self._lock:
            self._log(kind, **detail)

    # ----------------------------------------------------------------- before the start
    def poll_contacts(self) -> tuple[bool, ...]:
        """Electrode contact per channel, read from the board now."""
        with self._lock:
            for ch in self._channels:
                ch.contact = bool(self.board.contact(ch.index))
            return tuple(ch.contact for ch in self._channels)

    def start_refusals(self, *, caregiver_unlocked: bool = False) -> list[str]:
        """Every reason this session may not start now (empty: it may)."""
        reasons: list[str] = []
        now_wall = self.wall_clock()
        # The clinician's dates are days where the patient lives, as for the schedule.
        today = now_wall.astimezone().date()
        active = self.rx.active_on(today)
        if not active:
            if today > self.rx.expires:
                reasons.append(Reason(f"the prescription {self.rx.id} expired on "
                                      f"{self.rx.expires.isoformat()}; ask your clinician for a new one",
                                      "expired", date=self.rx.expires))
            else:
                reasons.append(Reason(f"the prescription {self.rx.id} is valid only from "
                                      f"{self.rx.starts_on.isoformat()}", "not_yet_valid",
                                      date=self.rx.starts_on))
        if not self.allow_unsigned:
            reasons.extend(self._signature_refusals())
        elif SIGNATURE_FIELD in self.rx.source and self.trust is not None:
            # --allow-unsigned admits an unsigned prescription (simulation, tests), never a
            # signed one that shows it was changed after signing. A key this trust store
            # does not hold cannot tell either way, so it counts as unsigned.
            reasons.extend(r for r in self._signature_refusals()
                           if not str(r.params.get("why", "")).startswith("signed by an unknown key"))
        if active:  # else the schedule would only say the dates again
            reasons.extend(self._schedule_refusals(now_wall))
        reasons.extend(self._program_refusals())
        if self.rx.supervised and not caregiver_unlocked:
            reasons.append(Reason("this prescription needs a caregiver: the caregiver must unlock "
                                  "the session", "caregiver"))
        try:
            estop = bool(self.board.estop_pressed())
            contacts = self.poll_contacts()
        except BoardFault as e:
            reasons.append(Reason(f"the stimulator does not answer ({e}); stimulation is not possible",
                                  "board", error=str(e)))
        else:
            if estop:
                reasons.append(Reason("the emergency stop button is pressed: release it (turn it) first",
                                      "estop"))
            for ch, ok in zip(self._channels, contacts):
                if not ok:
                    reasons.append(Reason(f"no electrode contact on channel {ch.index + 1} ({ch.label}): "
                                          f"check the pads and the cable", "contact",
                                          channel=ch.index, label=ch.label))
        return reasons

    def _program_refusals(self) -> list[str]:
        """The program planned and compiled, step by step, before any pulse: a step the
        board could not be given is found here, not in the middle of a session."""
        if self._program_error is None:
            try:
                for step in self._pending:
                    self._compile(step.spec)
            except ProgramFault as e:
                self._program_error = e.__cause__ or e
        if self._program_error is None:
            return []
        return [Reason(f"{CANNOT_RUN} ({type(self._program_error).__name__}: {self._program_error})",
                       "cannot_run", error=str(self._program_error))]

    def _compile(self, spec: Any) -> Any:
        """The compiled cycle of `spec` (each compiled once)."""
        if spec not in self._compiled:
            try:
                self._compiled[spec] = compile_cycle(spec, self.board.pins)
            except WaveformError as e:
                log.exception("a step of the program cannot be compiled")
                raise ProgramFault(f"{CANNOT_RUN} ({e})") from e
        return self._compiled[spec]

    def _signature_refusals(self) -> list[str]:
        if self.trust is None:
            return [Reason("no trust store of clinician keys is installed, so the prescription "
                           "cannot be verified", "signature", why="no trust store")]
        try:
            verify_prescription(dict(self.rx.source), self.trust)
        except SignatureError as e:
            return [Reason(f"the prescription's signature is not accepted: {e}", "signature",
                           why=e.reason)]
        return []

    def _schedule_refusals(self, now_wall: dt.datetime) -> list[str]:
        starts = [(dt.datetime.fromisoformat(s["started_at"]), s["status"])
                  for s in self._rx_sessions() if not ended_early_by_safety_stop(s)]
        return [Reason(r, "schedule") for r in schedule_allows(self.rx, starts, now=now_wall)]

    def _rx_sessions(self) -> list[dict[str, Any]]:
        return [s for s in self.store.sessions() if s["prescription_id"] == self.rx.id]

    # ----------------------------------------------------------------- start and loop
    def start(self, *, caregiver_unlocked: bool = False, threaded: bool = True) -> str:
        """Start the session (intensity zero on every channel) or raise StartRefused."""
        with self._lock:
            if self._phase is not Phase.READY:
                raise StartRefused([f"a session cannot start from the {self._phase.value} state"])
            reasons = self.start_refusals(caregiver_unlocked=caregiver_unlocked)
            if reasons:
                self._record_refused_start(reasons)
                raise StartRefused(reasons)
            earlier = self._rx_sessions()
            self._session_id = f"s-{uuid.uuid4().hex[:12]}"
            self._t0_us = self._now_us()
            self.store.save_prescription(self.rx)
            self.store.start_session(session_id=self._session_id, prescription_id=self.rx.id,
                                     started_at=self.wall_clock(),
                                     planned_contractions=self.rx.planned_contractions,
                                     channels=len(self._channels))
            with self._fault_aborts():
                self._log("start", caregiver_unlocked=caregiver_unlocked,
                          planned_contractions=self.rx.planned_contractions,
                          planned_s=_s(self._planned_total_us()))
                if earlier and ended_early_by_safety_stop(earlier[-1]):
                    self._log("restart_allowed", previous_session=earlier[-1]["id"],
                              previous_status=earlier[-1]["status"],
                              previous_ran_s=session_ran_s(earlier[-1]), early_abort_s=EARLY_ABORT_S)
                # Fence 3: the driver clamps to this prescription's caps whatever it is asked.
                self.board.set_caps(tuple(ch.cap_ma for ch in self._channels))
                for ch in self._channels:
                    ch.target_ma = ch.set_ma = 0.0
                    self.board.set_amplitude(ch.index, 0.0)
                self._phase = Phase.RUNNING
                now_us = self._now_us()
                self._next_tick_us = now_us
                self._last_ramp_us = now_us
                self._heartbeat()
                self._begin_next_step(now_us)
        if threaded:
            self._thread = threading.Thread(target=self.run, name="engine", daemon=True)
            self._thread.start()
        return self._session_id

    def _record_refused_start(self, reasons: list[str]) -> None:
        self.store.add_device_event(kind="start_refused",
                                    detail={"prescription_id": self.rx.id, "reasons": reasons},
                                    at=self.wall_clock())

    def _plan_from(self, block_index: int, *, first_cycle: int = 0) -> list[Step]:
        """The steps from `block_index` on, with the block values as they are now."""
        steps: list[Step] = []
        for index in range(block_index, len(self._blocks)):
            for step in block_steps(self._blocks[index], index, len(self._channels)):
                if index > block_index or step.cycle_index >= first_cycle:
                    steps.append(step)
        return steps

    def _set_pending(self, steps: list[Step]) -> None:
        self._pending = deque(steps)
        self._pending_us = sum(step.duration_us for step in steps)

    def _planned_total_us(self) -> int:
        current = self._step.duration_us if self._step is not None else 0
        return self._elapsed_done_us + current + self._pending_us

    def schedule_at(self, t: float, fn: Callable[[], None]) -> None:
        """Call `fn` from the loop at session time `t` (the headless runner's actions)."""
        with self._lock:
            heapq.heappush(self._timers, (self._t0_us + round(t * _US), next(self._timer_seq), fn))
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
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
                except (BoardFault, StoreError):
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
        except (BoardFault, StoreError) as e:
            if isinstance(e, StoreError):
                self.log_error = e
            self._abort_fault(e)
            raise

    def _sleep_until(self, t_us: int) -> None:
        # A command (pause, stop, a new timer) sets `_wake` so the loop need not sleep on.
        # µs / 1e6 comes back as the same µs through `_now_us` (round trip exact far
        # beyond any session's length), so waking at an edge means being at it.
        self.clock.sleep_until(t_us / _US, wake=self._wake)
        self._wake.clear()

    def _next_due(self) -> int:
        due = [self._next_tick_us]
        if self._timers:
            due.append(self._timers[0][0])
        if self._phase is Phase.RUNNING and self._step is not None:
            due.append(self._step_t0_us + self._step.duration_us)
            in_step = self._now_us() - self._step_t0_us
            for w in self._step.windows_us:
                if w is not None:
                    due.extend(self._step_t0_us + edge for edge in w if edge > in_step)
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
        if now_us >= self._next_tick_us:
            self._tick(now_us)
            if self._phase.ended:
                return
        if self._phase is Phase.RUNNING:
            self._advance_timeline(now_us)

    def _tick(self, now_us: int) -> None:
        # Skip missed ticks rather than bursting: a late loop is logged, not hidden.
        self._next_tick_us = max(self._next_tick_us + TICK_US, now_us)
        lapse_us = now_us - self._last_heartbeat_us
        near_miss = lapse_us >= HEARTBEAT_LAPSE_US and self._session_id is not None
        watchdog_us = getattr(getattr(self.board, "pins", None), "watchdog_ms", 250) * 1000
        if near_miss and self._phase is Phase.RUNNING and lapse_us >= watchdog_us:
            # As long as the watchdog itself: it may have cut the output mid-contraction,
            # which must not come back at the old level with the heartbeat. Pause.
            near_miss = False
            self._log("watchdog", heartbeat_gap_ms=round(lapse_us / 1000))
            self._alert = Alert(AlertKind.WATCHDOG, detail=f"no heartbeat for {lapse_us / 1000:.0f} ms")
            self._emit("alert", kind="watchdog")
            self.pause(reason="watchdog")
            if self._phase is not Phase.PAUSED:
                return
        self._heartbeat()
        if near_miss:
            # A near miss is logged after the heartbeat: the log's fsync (tens of ms on an
            # SD card) must not be what pushes the gap past the watchdog.
            self._log("watchdog", heartbeat_gap_ms=round(lapse_us / 1000))
        if self.board.estop_pressed():
            self._on_estop("button")
            return
        self._check_contacts()
        if self._phase is Phase.RUNNING:
            self._ramp_intensity(now_us)
        elif self._phase is Phase.PAUSED and now_us - self._paused_at_us >= MAX_PAUSE_US:
            self._log("stop", by="pause_timeout", paused_s=round(_s(now_us - self._paused_at_us), 3))
            lost = [ch.label for ch in self._channels if not ch.contact]
            if lost:  # contract.md: an electrode lost and not recovered aborts the session
                self._finish(Phase.ABORTED, f"electrode lost on {', '.join(lost)} and not reattached "
                                            f"within {MAX_PAUSE_US / 60_000_000:g} minutes")
            else:
                self._finish(Phase.STOPPED, f"paused for more than {MAX_PAUSE_US / 60_000_000:g} minutes")

    def _heartbeat(self) -> None:
        self.board.heartbeat()
        self._last_heartbeat_us = self._now_us()

    # ----------------------------------------------------------------- the timeline
    def _begin_next_step(self, t_start_us: int) -> None:
        if not self._pending:
            self._step = None
            self._finish(Phase.COMPLETED, "completed")
            return
        step = self._pending.popleft()
        self._pending_us -= step.duration_us
        if step.block_index != self._block_index:
            self._block_index = step.block_index
            self._log("block", block=step.block_index, label=self._blocks[step.block_index].label)
        self._step = self._last_begun = step
        self._step_t0_us = t_start_us
        self._play_step()

    def _play_step(self) -> None:
        """Arm the current step on the board and start it (one cycle queued, never more)."""
        step = self._step
        assert step is not None
        spec = step.spec
        if self._armed_spec != spec:
            self.board.arm(self._compile(spec))
            self._armed_spec = spec
        for ch in self._channels:
            ch.window = WindowState.PENDING  # every (re)played step plays every channel's window
        self.board.start()
        self._step_started = True

    def _advance_timeline(self, now_us: int) -> None:
        step = self._step
        if step is None:
            return
        in_step = now_us - self._step_t0_us
        for ch, w in zip(self._channels, step.windows_us):
            if w is None:
                continue
            a, b = w
            if ch.window == WindowState.PENDING and in_step >= a:
                ch.window = WindowState.ACTIVE
                ch.contracting = True
                if step.starts_contraction or ch.contraction_start_us is None:
                    ch.contraction_start_us = self._step_t0_us + a - self._t0_us
                    ch.peak_ma = ch.set_ma
                    self._emit("contraction_start", channel=ch.index)
            if ch.window == WindowState.ACTIVE and in_step >= b:
                ch.window = WindowState.DONE
                ch.contracting = False
                if step.ends_contraction:
                    self._end_contraction(ch, self._step_t0_us + b - self._t0_us, completed=True)
                    self._emit("rest_start", channel=ch.index)
        end = self._step_t0_us + step.duration_us
        if now_us >= end:
            self._elapsed_done_us += step.duration_us
            self._step_started = False
            self._begin_next_step(end)  # nominal: cycles follow each other with no drift

    def _end_contraction(self, ch: _Channel, t_end_us: int, *, completed: bool) -> None:
        if ch.contraction_start_us is None:
            return
        assert self._session_id is not None
        self.store.add_contraction(self._session_id, channel=ch.index, index=ch.done if completed else -1,
                                   start_t=_s(ch.contraction_start_us), end_t=_s(t_end_us),
                                   peak_ma=round(ch.peak_ma, 3), completed=completed)
        if completed:
            ch.done += 1
        ch.contraction_start_us = None
        ch.peak_ma = 0.0

    def _cut_contractions(self) -> None:
        """A contraction interrupted by pause, stop or abort is logged as cut short; the
        interrupted cycle is played again from its start on resume."""
        now_us = self._now_us()
        for ch in self._channels:
            if ch.contraction_start_us is not None and ch.window != WindowState.DONE:
                self._end_contraction(ch, now_us - self._t0_us, completed=False)
            ch.contracting = False
            if ch.window == WindowState.ACTIVE:
                ch.window = WindowState.PENDING
        step = self._step
        if step is not None and self._step_started:
            in_step = now_us - self._step_t0_us
            all_done = step.ends_contraction and all(w is None or in_step >= w[1] for w in step.windows_us)
            if all_done:
                # Paused in the rest after a whole contraction: resume with the next cycle.
                self._elapsed_done_us += step.duration_us
                self._step = None
        self._step_started = False

    # ----------------------------------------------------------------- intensity
    def _ramp_intensity(self, now_us: int) -> None:
        dt_s = _s(max(0, now_us - self._last_ramp_us))
        self._last_ramp_us = now_us
        for ch in self._channels:
            if ch.set_ma < ch.target_ma:
                self._apply(ch, min(ch.target_ma, ch.set_ma + ch.rise_ma_per_s * dt_s))
            elif ch.set_ma >= ch.target_ma:
                ch.rise_ma_per_s = INTENSITY_RISE_MA_PER_S

    def _apply(self, ch: _Channel, ma: float) -> None:
        ch.set_ma = float(self.board.set_amplitude(ch.index, min(ma, ch.target_ma, ch.cap_ma)))
        ch.session_peak_ma = max(ch.session_peak_ma, ch.set_ma)
        if ch.contracting:
            ch.peak_ma = max(ch.peak_ma, ch.set_ma)

    def _check_channel(self, channel: int) -> _Channel:
        if not isinstance(channel, int) or not 0 <= channel < len(self._channels):
            raise ValueError(f"channel {channel!r} does not exist (this prescription has "
                             f"channels 0 to {len(self._channels) - 1})")
        return self._channels[channel]

    def request_intensity(self, channel: int, ma: float) -> float:
        """The patient asks for `ma` on `channel`: above the cap is refused and logged;
        lowering acts at once; raising rises at a limited rate. Returns the new target."""
        with self._lock:
            ch = self._check_channel(channel)
            if self._phase is not Phase.RUNNING:
                self._notice = Notice("not_running", {"phase": self._phase.value},
                                      f"intensity can be changed only while the session runs "
                                      f"(it is {self._phase.value})")
                self._log("refused", what="intensity", channel=channel, asked_ma=ma,
                          reason=f"session is {self._phase.value}")
                return ch.target_ma
            if not isinstance(ma, (int, float)) or isinstance(ma, bool) or ma != ma or ma < 0:
                self._log("refused", what="intensity", channel=channel, asked_ma=str(ma),
                          reason="not a current in mA")
                raise ValueError(f"intensity must be a number of mA from 0 to {ch.cap_ma:g}, got {ma!r}")
            if ma > ch.cap_ma:
                self._notice = Notice("at_cap", {"channel": channel, "label": ch.label, "cap_ma": ch.cap_ma},
                                      f"{ch.cap_ma:g} mA is the most your prescription allows on "
                                      f"{ch.label}")
                self._log("refused", what="intensity", channel=channel, asked_ma=ma, limit_ma=ch.cap_ma)
                ma = ch.cap_ma
                if ch.target_ma >= ma:
                    return ch.target_ma
            else:
                self._notice = None
            ch.target_ma = float(ma)
            ch.rise_ma_per_s = INTENSITY_RISE_MA_PER_S
            self._log("intensity", channel=channel, ma=ch.target_ma)
            if ch.target_ma < ch.set_ma:
                with self._fault_aborts():
                    self._apply(ch, ch.target_ma)  # lowering acts at once
            self._wake.set()
            return ch.target_ma

    def increase(self, channel: int) -> float:
        with self._lock:
            ch = self._check_channel(channel)
            return self.request_intensity(channel, round(ch.target_ma + INTENSITY_STEP_MA, 3))

    def decrease(self, channel: int) -> float:
        with self._lock:
            ch = self._check_channel(channel)
            return self.request_intensity(channel, max(0.0, round(ch.target_ma - INTENSITY_STEP_MA, 3)))

    def restore(self, channel: int) -> float:
        """One touch back to the level before the last pause or electrode loss, by a ramp."""
        with self._lock:
            ch = self._check_channel(channel)
            if self._phase is not Phase.RUNNING or ch.previous_ma <= ch.target_ma:
                return ch.target_ma
            target = self.request_intensity(channel, min(ch.previous_ma, ch.cap_ma))
            ch.rise_ma_per_s = INTENSITY_RESTORE_MA_PER_S
            return target

    def _zero_all(self) -> None:
        for ch in self._channels:
            if ch.target_ma > 0 or ch.set_ma > 0:
                ch.previous_ma = max(ch.target_ma, ch.set_ma)
            ch.target_ma = ch.set_ma = 0.0

    # ----------------------------------------------------------------- adjustments
    def set_param(self, block_index: int, param: str, value: float) -> None:
        """A patient adjustment of a block value, only within the prescription's range."""
        with self._lock:
            if not isinstance(block_index, int) or not 0 <= block_index < len(self._blocks):
                msg = (f"block {block_index!r} does not exist (blocks 0 to {len(self._blocks) - 1})")
                self._log("refused", what="set", block=block_index, param=param, value=value, reason=msg)
                raise ValueError(msg)
            block = self._blocks[block_index]
            try:
                new_block = block.with_value(param, value)
            except ValueError as e:
                self._notice = Notice("param_range", {"block": block_index, "param": param}, str(e))
                rng = block.ranges.get(param)
                self._log("refused", what="set", block=block_index, param=param, value=value,
                          limit=None if rng is None else [rng.min, rng.max], reason=str(e))
                raise
            running = self._phase in (Phase.RUNNING, Phase.PAUSED)
            if running and (block_index < self._block_index
                            or (block_index == self._block_index and block.continuous)):
                msg = (f"block {block_index} ({block.label}) is already over"
                       if block_index < self._block_index else
                       f"block {block_index} ({block.label}) runs without rest: its values can "
                       f"change only before it begins")
                self._log("refused", what="set", block=block_index, param=param, value=value, reason=msg)
                raise ValueError(msg)
            self._blocks[block_index] = new_block
            try:
                self._replan_after_set(block_index, block)
            except (PlanError, WaveformError) as e:  # never for a valid range: still no crash
                self._blocks[block_index] = block
                log.exception("the adjusted program cannot be planned")
                msg = f"{CANNOT_RUN} with {param} = {value!r}"
                self._notice = Notice("param_range", {"block": block_index, "param": param}, msg)
                self._log("refused", what="set", block=block_index, param=param, value=value,
                          reason=f"{msg} ({e})")
                raise ValueError(msg) from e
            self._log("set", block=block_index, param=param, value=value)

    def _replan_after_set(self, block_index: int, block: Any) -> None:
        # Takes effect from the next cycle of the current block, or when its block begins.
        # A running continuous block keeps its segments (they were cut as it began).
        # The last step begun is the reference: a step cut by a pause is replayed as it
        # is, and one finished before a pause is not played again.
        begun = self._last_begun
        if self._phase in (Phase.RUNNING, Phase.PAUSED) and begun is not None:
            current = begun.block_index
            if block_index == current and not block.continuous:
                self._set_pending(self._plan_from(current, first_cycle=begun.cycle_index + 1))
            elif block_index > current:
                keep = [st for st in self._pending if st.block_index <= current]
                self._set_pending(keep + self._plan_from(current + 1))
        elif not self._phase.ended:
            self._set_pending(self._plan_from(max(self._block_index, 0)))
            self._program_error = None  # the new plan is checked again before the start

    # ----------------------------------------------------------------- pause, stop, alerts
    def pause(self, *, reason: str = "patient") -> None:
        with self._lock:
            if self._phase is not Phase.RUNNING:
                return
            # Enable low, wave stopped, legs low, DAC zero; the pulse under way ends
            # balanced first, unless the watchdog (which may have cut it) is the reason.
            if not self._safe_stop(balanced=reason != "watchdog"):
                return
            self._cut_contractions()
            self._zero_all()
            self._phase = Phase.PAUSED
            self._paused_at_us = self._now_us()
            self._log("pause", reason=reason)
            self._wake.set()

    def resume(self) -> None:
        with self._lock:
            if self._phase is not Phase.PAUSED:
                return
            if self._alert is not None and self._alert.needs_ack:
                self._notice = Notice("alert_open", {}, "acknowledge the alert first")
                self._log("refused", what="resume", reason="an alert needs acknowledging")
                return
            missing = [ch for ch in self._channels if not ch.contact]
            if missing:
                labels = ", ".join(ch.label for ch in missing)
                self._notice = Notice("contact_missing", {"labels": labels},
                                      f"reattach the electrode on {labels} to continue")
                self._log("refused", what="resume", reason=f"no electrode contact on {labels}")
                return
            if self._alert is not None and self._alert.kind in (AlertKind.LEAD_OFF, AlertKind.WATCHDOG):
                self._alert = None
            now_us = self._now_us()
            self._phase = Phase.RUNNING
            with self._fault_aborts():
                self._log("resume")
                self._next_tick_us = now_us
                self._last_ramp_us = now_us
                self._heartbeat()
                if self._step is None:
                    self._begin_next_step(now_us)
                else:
                    self._step_t0_us = now_us
                    self._play_step()
            self._wake.set()

    def stop(self, *, by: str = "patient") -> None:
        """Stop the session now. Always works, in any phase."""
        with self._lock:
            if self._safe_stop(balanced=True) and self._phase in (Phase.RUNNING, Phase.PAUSED):
                self._cut_contractions()
                self._log("stop", by=by)
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
            self._zero_all()
            self._alert = Alert(AlertKind.ESTOP, detail=f"e-stop pressed ({source})", needs_ack=True)
            if error is None:
                self._log("estop", source=source)
            else:
                self._log("estop", source=source, safe_stop_failed=str(error))
            self._emit("alert", kind="estop")
            if error is None:
                self._finish(Phase.ABORTED, "e-stop pressed", stop_board=False)  # stopped above
        if error is not None:
            self._abort_fault(error, stopped=True)
        self._wake.set()

    def _check_contacts(self) -> None:
        for ch in self._channels:
            contact = bool(self.board.contact(ch.index))
            if contact == ch.contact:
                continue
            ch.contact = contact
            if self._session_id is None or self._phase.ended:
                continue
            if not contact:
                self._on_lead_off(ch)
            else:
                self._log("lead_on", channel=ch.index)
                if (self._alert is not None and self._alert.kind is AlertKind.LEAD_OFF
                        and all(c.contact for c in self._channels)):
                    self._alert = None

    def _on_lead_off(self, ch: _Channel) -> None:
        # That channel's output off once its pulse under way has ended, then the whole
        # session pauses with an alert.
        self.board.set_amplitude(ch.index, 0.0, balanced=True)
        self._log("lead_off", channel=ch.index)
        self._alert = Alert(AlertKind.LEAD_OFF, channel=ch.index,
                            detail=f"electrode contact lost on {ch.label}")
        self._emit("alert", kind="lead_off", channel=ch.index)
        if self._phase is Phase.RUNNING:
            self.pause(reason="lead_off")

    def check_now(self) -> None:
        """Poll the e-stop and the electrodes at once (after a change on the board)."""
        with self._lock:
            if self._phase.ended or self._frozen:
                return
            with contextlib.suppress(BoardFault, StoreError), self._fault_aborts():
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
        self._alert = Alert(AlertKind.FAULT, detail=str(error), needs_ack=True)
        if self._session_id is not None:
            try:
                self._cut_contractions()
                self._log("fault", error=str(error), type=type(error).__name__)
            except Exception:
                log.exception("could not log the fault")
        self._emit("alert", kind="fault")
        self._finish(Phase.ABORTED, f"fault: {error}", stop_board=False)

    def acknowledge(self) -> bool:
        """OK on a whole-screen alert. An e-stop alert stays while the button is still
        pressed (the notice `estop_pressed` says so); returns whether the alert is gone."""
        with self._lock:
            if self._alert is not None and self._alert.needs_ack:
                if self._alert.kind is AlertKind.ESTOP and self._estop_still_pressed():
                    self._notice = Notice("estop_pressed", {}, "release the emergency stop button "
                                          "(turn it) first, then touch OK")
                    self._log("refused", what="acknowledge", alert="estop", reason="e-stop still pressed")
                    return False
                self._log("acknowledge", alert=self._alert.kind.value)
                self._alert = None
            self._notice = None
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
        for ch in self._channels:
            ch.contracting = False
        if self._alert is not None and not self._alert.needs_ack:
            self._alert = None  # a loose-electrode or watchdog alert ends with the session
        self._phase = phase
        self._end_reason = reason
        self._step = None
        if self._session_id is not None:
            try:
                self._log("end", status=phase.value, reason=reason)
                self.store.end_session(self._session_id, status=phase.value, ended_at=self.wall_clock())
            except StoreError:  # the output is already off; the open session is found next start
                log.exception("the log could not record the end of the session")
        self._emit("ended", status=phase.value, reason=reason)

    # ----------------------------------------------------------------- after
    def save_report(self, *, pain: int, effort: float, comment: str | None = None) -> None:
        with self._lock:
            if self._session_id is None or not self._phase.ended:
                raise ValueError("a report can be saved only after a session has ended")
            self.store.save_report(self._session_id, pain=pain, effort=effort, comment=comment)

