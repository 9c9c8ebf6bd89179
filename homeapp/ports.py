"""The engine's seams: what it needs of a board, a log and a clock, as typing Protocols.

Neutral ground. The engine imports these and nothing of `hw/`; the adapters (`hw.driver`'s
`Stimulator` against pigpiod or the simulator, `homeapp.store.Store` on SQLite, the
clocks of `hw.clock`) satisfy them structurally and import from here only the few
shared names: the `Clock` protocol and the two error bases that cross the seam.

- `BoardFault`: the board cannot be trusted to be safe. Every board error that means
  "the output may not be safe" derives from it (`hw.exc.BoardFault` does), so the engine
  aborts on any of them without knowing the driver.
- `ProgramError`: the board cannot be given this program (the waveform compiler refused a
  cycle); `hw.exc.WaveformError` derives from it.
- `LogError`: the log cannot be written; `homeapp.store.StoreError` derives from it.

Times at this seam: the clock speaks float seconds since its epoch; the engine turns
them into integer µs in one place (`homeapp.session.eventlog.now_us`).
"""
from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Callable, Hashable, Mapping, Protocol, Sequence, runtime_checkable


class BoardFault(Exception):
    """The board cannot be trusted to be safe: stop, report, do not retry."""


class ProgramError(ValueError):
    """The board cannot be given this program (a cycle the compiler cannot fit)."""


class LogError(Exception):
    """The log cannot be used (written, read): nothing already written is lost."""


def now_utc() -> dt.datetime:
    """The wall clock's now, in UTC (what the log records a session's start and end at)."""
    return dt.datetime.now(dt.timezone.utc)


@runtime_checkable
class Clock(Protocol):
    """What the engine, the driver and the simulator need of time (`hw.clock` has the
    real, scaled, virtual and held implementations)."""

    virtual: bool

    def now(self) -> float:
        """Seconds since this clock's epoch."""

    def sleep_until(self, t: float, wake: threading.Event | None = None) -> None:
        """Return once `now() >= t` (at once if it already is), or earlier once `wake` is
        set, where the clock can be woken (a command for the engine's loop)."""

    def sleep(self, dt: float) -> None:
        """Sleep for `dt` seconds of this clock's time."""


@runtime_checkable
class Board(Protocol):
    """The stimulation board as the engine drives it (`hw.driver.Stimulator`).

    Every method may raise `BoardFault`; after one the board stays stopped for good."""

    @property
    def watchdog_ms(self) -> int:
        """The board's heartbeat watchdog: no heartbeat edge this long cuts the output."""

    def compile(self, spec: Hashable) -> Any:
        """Compile one step of the plan (a `hw.waveform.CycleSpec`) now, each once, without
        arming it: the check before a session starts. Raises `ProgramError`."""

    def arm(self, cycle: Hashable) -> None:
        """Make one step of the plan (a `hw.waveform.CycleSpec`) the next to play: the
        board compiles it (each once) and checks its waves. Raises `ProgramError` when it
        cannot be played. Never starts anything."""

    def start(self) -> None:
        """Enable the output and play the armed step once."""

    def stop(self, *, balanced: bool = False) -> None:
        """The safe stop: enable low, wave stopped, legs low, DAC zero. `balanced`: the
        pulse under way finishes its second phase first."""

    def set_max_ma(self, max_ma: Sequence[float]) -> tuple[float, ...]:
        """Lower each channel's `max_ma` (never raise it); returns those in force."""

    def set_amplitude(self, channel: int, ma: float, *, balanced: bool = False) -> float:
        """Set a channel's current, clamped by the board; returns the mA really set."""

    def heartbeat(self) -> None:
        """One edge on the heartbeat line."""

    def contact(self, channel: int) -> bool:
        """Electrode contact on `channel`, read now."""

    def estop_pressed(self) -> bool:
        """The e-stop button, read now."""


@runtime_checkable
class Store(Protocol):
    """The session log as the engine writes it (`homeapp.store.Store`). A write that
    fails raises `LogError` (`homeapp.store.StoreError`); nothing already written is lost."""

    def save_prescription(self, rx: Any) -> str: ...

    def start_session(self, *, session_id: str, prescription_id: str, started_at: dt.datetime,
                      planned_contractions: int, channels: int,
                      check: Callable[[], None] | None = None) -> None: ...

    def add_event(self, session_id: str, *, t: float, kind: str,
                  detail: Mapping[str, Any] | None = None) -> None: ...

    def add_contraction(self, session_id: str, *, channel: int, index: int, start_t: float,
                        end_t: float, peak_ma: float, completed: bool) -> None: ...

    def end_session(self, session_id: str, *, status: str, ended_at: dt.datetime) -> None: ...

    def add_device_event(self, *, kind: str, detail: Mapping[str, Any] | None = None,
                         at: dt.datetime | None = None) -> None: ...

    def sessions(self, *, since: dt.datetime | None = None) -> list[dict[str, Any]]: ...

    def session_spans(self, prescription_id: str) -> list[dict[str, Any]]: ...

    def save_report(self, session_id: str, *, pain: int, effort: float,
                    comment: str | None = None) -> None: ...
