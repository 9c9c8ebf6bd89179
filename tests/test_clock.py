"""The clocks: the held clock the touchscreen tests drive, and waking a sleeping loop."""
from __future__ import annotations

import threading
import time

import pytest

from hw.clock import HeldClock, RealClock, ScaledClock, VirtualClock


def ticker(clock, period_s: float, until_s: float, seen: list[float]) -> threading.Thread:
    """A loop like the engine's: wake at each period, note the time, sleep to the next."""
    def run():
        k = 1
        while k * period_s <= until_s + 1e-9:
            clock.sleep_until(round(k * period_s, 6))
            seen.append(round(clock.now(), 6))
            k += 1
    th = threading.Thread(target=run, name="ticker", daemon=True)
    th.start()
    return th


def wait_asleep(clock: HeldClock, th: threading.Thread) -> None:
    end = time.monotonic() + 5
    while th not in clock._asleep and th.is_alive():
        assert time.monotonic() < end, "the sleeper never went to sleep"
        time.sleep(0.001)


def test_a_held_clock_moves_only_when_its_owner_advances_it():
    clock = HeldClock()
    seen: list[float] = []
    th = ticker(clock, 0.1, 0.3, seen)
    wait_asleep(clock, th)
    time.sleep(0.05)
    assert clock.now() == 0.0 and seen == []        # real time passing moves nothing
    clock.advance(0.05)
    assert seen == []
    clock.advance(0.05)
    assert seen == [0.1]                             # served before advance returned


def test_one_long_advance_serves_every_deadline_on_the_way():
    """A busy owner that moves time 1 s at once still lets the loop run at each 0.1 s."""
    clock = HeldClock()
    seen: list[float] = []
    steps: list[tuple[float, float]] = []
    clock.on_advance(lambda a, b: steps.append((round(a, 6), round(b, 6))))
    th = ticker(clock, 0.1, 1.0, seen)
    wait_asleep(clock, th)
    clock.advance_to(1.0)
    assert seen == [round(0.1 * i, 6) for i in range(1, 11)]
    assert [b for _a, b in steps] == seen            # the board caught up before each wake
    th.join(1)
    assert not th.is_alive()
    clock.advance(1.0)                               # a finished sleeper holds nothing up
    assert clock.now() == 2.0


def test_a_set_wake_event_ends_a_held_sleep_early():
    clock = HeldClock()
    wake = threading.Event()
    done = threading.Event()

    def run():
        clock.sleep_until(10.0, wake=wake)
        done.set()
    th = threading.Thread(target=run, daemon=True)
    th.start()
    wait_asleep(clock, th)
    assert not done.wait(0.05)
    wake.set()
    assert done.wait(2)
    assert clock.now() == 0.0


def test_a_sleeper_that_never_sleeps_again_is_named(monkeypatch):
    clock = HeldClock()
    monkeypatch.setattr(clock, "SETTLE_TIMEOUT_S", 0.2)
    release = threading.Event()

    def run():
        clock.sleep_until(0.1)
        release.wait(5)                              # stuck, alive, not asleep on the clock
    th = threading.Thread(target=run, name="stuck-loop", daemon=True)
    th.start()
    wait_asleep(clock, th)
    with pytest.raises(RuntimeError, match="stuck-loop did not sleep again"):
        clock.advance(0.2)
    release.set()


@pytest.mark.parametrize("clock", [RealClock(), ScaledClock(10.0)], ids=["real", "scaled"])
def test_real_clocks_wake_early_on_the_event(clock):
    wake = threading.Event()
    wake.set()
    t0 = time.monotonic()
    clock.sleep_until(clock.now() + 30.0, wake=wake)
    assert time.monotonic() - t0 < 5


def test_a_virtual_clock_moves_when_slept_on():
    clock = VirtualClock()
    clock.sleep_until(2.5, wake=threading.Event())
    assert clock.now() == 2.5
