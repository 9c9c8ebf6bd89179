"""One clock abstraction for the engine, the driver and the simulator.

Every part takes its clock from outside. On the device the clock is real monotonic time;
in the interactive simulator it is real time scaled; in tests and in
`homeapp session run --virtual-time` it is a discrete-event virtual clock that only moves
when its owner sleeps, so a run is fully deterministic and as fast as the machine allows.

Times are float seconds since the clock's epoch (its creation), never wall-clock dates.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Protocol


class Clock(Protocol):
    """What the engine, the driver and the simulator need of time."""

    virtual: bool

    def now(self) -> float:
        """Seconds since this clock's epoch."""

    def sleep_until(self, t: float) -> None:
        """Return once `now() >= t` (at once if it already is)."""

    def sleep(self, dt: float) -> None:
        """Sleep for `dt` seconds of this clock's time."""


class RealClock:
    """Monotonic real time: the device and any real pigpiod."""

    virtual = False

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def sleep_until(self, t: float) -> None:
        dt = t - self.now()
        if dt > 0:
            time.sleep(dt)

    def sleep(self, dt: float) -> None:
        if dt > 0:
            time.sleep(dt)


class ScaledClock(RealClock):
    """Real time running `scale` times faster (scale 1 is RealClock): the interactive
    simulator and demonstrations."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        super().__init__()
        self.scale = scale

    def now(self) -> float:
        return (time.monotonic() - self._t0) * self.scale

    def sleep_until(self, t: float) -> None:
        dt = (t - self.now()) / self.scale
        if dt > 0:
            time.sleep(dt)

    def sleep(self, dt: float) -> None:
        if dt > 0:
            time.sleep(dt / self.scale)


class VirtualClock:
    """Discrete-event time: `now()` changes only when the owner sleeps or advances.

    Listeners registered with `on_advance` are called as `fn(t_from, t_to)` each time the
    clock moves forward, while the clock's lock is held by nobody (so they may read
    `now()`); the simulator uses this to play waves and fire the watchdog lazily.
    """

    virtual = True

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[float, float], None]] = []

    def now(self) -> float:
        return self._t

    def on_advance(self, fn: Callable[[float, float], None]) -> None:
        self._listeners.append(fn)

    def advance_to(self, t: float) -> None:
        with self._lock:
            if t <= self._t:
                return
            t_from, self._t = self._t, float(t)
            for fn in list(self._listeners):
                fn(t_from, self._t)

    def sleep_until(self, t: float) -> None:
        self.advance_to(t)

    def sleep(self, dt: float) -> None:
        if dt > 0:
            self.advance_to(self._t + dt)
