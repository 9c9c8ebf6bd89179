"""One clock abstraction for the engine, the driver and the simulator.

Every part takes its clock from outside. On the device the clock is real monotonic time;
in the interactive simulator it is real time scaled; in tests and in
`homeapp session run --virtual-time` it is a discrete-event virtual clock that only moves
when its owner sleeps, so a run is fully deterministic and as fast as the machine allows.
The touchscreen tests use a held clock: virtual time that the test moves frame by frame,
while the engine's thread sleeps on it, so a busy machine slows the session down instead
of making its heartbeat late.

Times are float seconds since the clock's epoch (its creation), never wall-clock dates.
The protocol they share (`Clock`) lives in the neutral `homeapp.ports`, so the engine
needs nothing of `hw/` to name it; it is re-exported here.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from homeapp.ports import Clock  # the protocol every clock here satisfies

__all__ = ["Clock", "RealClock", "ScaledClock", "VirtualClock", "HeldClock"]


def _wait_real(dt_s: float, wake: threading.Event | None) -> None:
    if dt_s > 0:
        if wake is None:
            time.sleep(dt_s)
        else:
            wake.wait(dt_s)


class RealClock:
    """Monotonic real time: the device and any real pigpiod."""

    virtual = False

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def sleep_until(self, t: float, wake: threading.Event | None = None) -> None:
        _wait_real(t - self.now(), wake)

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

    def sleep_until(self, t: float, wake: threading.Event | None = None) -> None:
        _wait_real((t - self.now()) / self.scale, wake)

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

    def sleep_until(self, t: float, wake: threading.Event | None = None) -> None:
        # Discrete-event time: whoever sleeps moves time, so there is nothing to wake.
        self.advance_to(t)

    def sleep(self, dt: float) -> None:
        if dt > 0:
            self.advance_to(self._t + dt)


class HeldClock:
    """Virtual time that its owner moves, and that other threads sleep on.

    `sleep_until` blocks the calling thread until the owner has advanced the clock to its
    deadline (or its `wake` event is set). `advance_to` moves time one sleeper's deadline
    at a time and, after each step, waits until every thread that sleeps on this clock is
    asleep again with a later deadline (or has ended): each tick the engine is due is
    served before time moves past it, however busy the machine is.

    The touchscreen tests own one: the engine runs in its own thread as on the device, the
    simulated board follows the same time, and a starved CPU slows the session's time
    down rather than letting a heartbeat fall 250 ms behind.
    """

    virtual = True
    #: Real seconds to wait for a sleeper to go back to sleep before calling it stuck.
    SETTLE_TIMEOUT_S = 20.0

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._cond = threading.Condition()
        self._listeners: list[Callable[[float, float], None]] = []
        self._asleep: dict[threading.Thread, float] = {}   # thread -> its deadline
        self._sleepers: set[threading.Thread] = set()      # every thread that has slept here

    def now(self) -> float:
        return self._t

    def on_advance(self, fn: Callable[[float, float], None]) -> None:
        self._listeners.append(fn)

    def sleep_until(self, t: float, wake: threading.Event | None = None) -> None:
        me = threading.current_thread()
        with self._cond:
            if self._t >= t:
                return
            self._sleepers.add(me)
            self._asleep[me] = t
            self._cond.notify_all()             # the owner may be waiting for us to settle
            try:
                while self._t < t and not (wake is not None and wake.is_set()):
                    # A short real timeout: `wake` is an Event, not this condition.
                    self._cond.wait(0.02 if wake is not None else None)
            finally:
                del self._asleep[me]
                self._cond.notify_all()

    def sleep(self, dt: float) -> None:
        self.sleep_until(self._t + dt)

    def advance(self, dt: float) -> None:
        self.advance_to(self._t + dt)

    def advance_to(self, t: float) -> None:
        """Move time to `t`, stopping at each sleeper's deadline on the way."""
        while True:
            with self._cond:
                if t <= self._t:
                    return
                due = [d for d in self._asleep.values() if self._t < d < t]
                t_from, self._t = self._t, min(due, default=float(t))
                t_to = self._t
            for fn in list(self._listeners):
                fn(t_from, t_to)
            with self._cond:
                self._cond.notify_all()
                self._settle()

    def _settle(self) -> None:
        """Wait (holding the condition) until every sleeper is asleep past now or gone."""
        end = time.monotonic() + self.SETTLE_TIMEOUT_S
        while True:
            busy = [th for th in self._sleepers
                    if th.is_alive() and self._asleep.get(th, self._t) <= self._t]
            self._sleepers = {th for th in self._sleepers if th.is_alive()}
            if not busy:
                return
            left = end - time.monotonic()
            if left <= 0:
                names = ", ".join(th.name for th in busy)
                raise RuntimeError(f"held clock: {names} did not sleep again within "
                                   f"{self.SETTLE_TIMEOUT_S:.0f} s of time reaching {self._t:.3f}")
            self._cond.wait(min(left, 0.02))
