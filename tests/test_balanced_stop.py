"""The balanced stop (the patient's pause and stop, an electrode lost): a pulse under way
finishes its second phase before the output stops; the e-stop and the watchdog still cut
at once. Checked pulse by pulse from the simulated board's trace, through the real pigpio
client and the driver."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw import pigpio_limits as L
from hw.driver import Stimulator
from hw.exc import BoardFault
from hw.waveform import CycleSpec, compile_cycle
from schedules.limits import INTERPHASE_GAP_US

START_US = L.CHAIN_START_DELAY_US


@pytest.fixture
def stim(sim, pin_map, virtual_clock):
    _board, server = sim
    s = Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=server.port,
                   max_ma=(60.0, 40.0), use_button=False)
    yield s
    try:
        s.close()
    except BoardFault:
        pass


def _charge(trace, channel: int, t0_us: int, t1_us: int) -> float:
    """Net charge (mA·µs) the channel delivered in [t0_us, t1_us)."""
    total = 0.0
    for s0, s1, ma in trace.current_segments(channel):
        lo, hi = max(s0, t0_us), min(s1, t1_us)
        if hi > lo:
            total += ma * (hi - lo)
    return total


def _assert_every_pulse_balanced(trace, channels, since_us: int = 0) -> None:
    """Every pulse from `since_us` on: both phases as wide, and no net charge."""
    for ch in channels:
        segments = [seg for seg in trace.current_segments(ch) if seg[1] > since_us]
        for p in trace.pulses(ch):
            if p.start_us < since_us:
                continue
            assert p.a_us == p.b_us and p.a_us > 0, f"channel {ch}: unbalanced pulse {p}"
            charge = sum(ma * (min(s1, p.end_us) - max(s0, p.start_us))
                         for s0, s1, ma in segments if s0 < p.end_us and s1 > p.start_us)
            assert charge == 0, f"channel {ch}: net charge {charge} mA·µs in {p}"


def _start(stim, clock, spec: CycleSpec, ma: float = 30.0):
    cycle = compile_cycle(spec, stim.pins)
    stim.arm(cycle)
    for ch in range(spec.channels):
        stim.set_amplitude(ch, ma)
    t0_us = round(clock.now() * 1e6)
    stim.start()
    return cycle, t0_us


def _advance_us(clock, stim, to_us: int) -> None:
    """Virtual time to `to_us`, feeding the watchdog on the way as the engine would."""
    while round(clock.now() * 1e6) < to_us:
        clock.advance_to(min(to_us, round(clock.now() * 1e6) + 100_000) / 1e6)
        stim.heartbeat()


def test_a_pause_280_us_into_leg_a_of_a_450_us_pulse_finishes_the_pulse(sim, stim, virtual_clock):
    # 150 Hz, 450 µs, continuous, 30 mA: a pause 280 µs into leg A used to leave it with no B
    board, _ = sim
    spec = CycleSpec(hz=150, pulse_us=450, on_s=10, off_s=0, ramp_up_s=0, ramp_down_s=0,
                     ramp_up=False, ramp_down=False)
    cycle, t0 = _start(stim, virtual_clock, spec)
    k = 1000  # a pulse 6.7 s into the segment
    pulse_start = t0 + START_US + cycle.grid.t(k)
    _advance_us(virtual_clock, stim, pulse_start + 280)
    assert board.trace().value_at("ch0.a", pulse_start + 280) == 1
    stim.pause(balanced=True)
    tr = board.trace()
    last = tr.pulses(0)[-1]
    assert (last.start_us, last.a_us, last.gap_us, last.b_us) == (pulse_start, 450, INTERPHASE_GAP_US, 450)
    stopped_at = tr.signal("enable")[-1]
    assert stopped_at == (last.end_us, 0)  # the stop follows the pulse's end at once
    _assert_every_pulse_balanced(tr, [0])


def test_without_balanced_the_stop_still_cuts_at_once(sim, stim, virtual_clock):
    board, _ = sim
    spec = CycleSpec(hz=150, pulse_us=450, on_s=10, off_s=0, ramp_up_s=0, ramp_down_s=0,
                     ramp_up=False, ramp_down=False)
    cycle, t0 = _start(stim, virtual_clock, spec)
    at = t0 + START_US + cycle.grid.t(10) + 280
    _advance_us(virtual_clock, stim, at)
    stim.stop()
    tr = board.trace()
    assert tr.signal("enable")[-1] == (at, 0)
    assert tr.pulses(0)[-1].b_us == 0


def test_an_electrode_lost_mid_pulse_gets_its_second_phase_at_the_same_current(sim, stim, virtual_clock):
    board, _ = sim
    spec = CycleSpec(hz=50, pulse_us=300, on_s=4, off_s=6, ramp_up_s=0, ramp_down_s=0, channels=2)
    cycle, t0 = _start(stim, virtual_clock, spec)
    pulse_start = t0 + START_US + cycle.grid.t(20)
    _advance_us(virtual_clock, stim, pulse_start + 100)
    stim.set_amplitude(1, 0.0, balanced=True)
    tr = board.trace()
    assert tr.value_at("ch1.ma", pulse_start + 300 + INTERPHASE_GAP_US + 299) == pytest.approx(30, abs=0.03)
    assert tr.value_at("ch1.ma", pulse_start + 2 * 300 + INTERPHASE_GAP_US) == 0
    assert _charge(tr, 1, pulse_start, pulse_start + 1000) == 0
    stim.stop(balanced=True)  # the pause that follows: no pulse is under way any more
    tr = board.trace()
    assert tr.signal("enable")[-1] == (pulse_start + 2 * 300 + INTERPHASE_GAP_US, 0)
    _assert_every_pulse_balanced(tr, [0, 1])


def test_between_pulses_the_balanced_stop_does_not_wait(sim, stim, virtual_clock):
    board, _ = sim
    spec = CycleSpec(hz=20, pulse_us=200, on_s=2, off_s=2, ramp_up_s=0.5, ramp_down_s=0.5)
    cycle, t0 = _start(stim, virtual_clock, spec)
    at = t0 + START_US + cycle.grid.t(5) + 10_000  # in the rest between two pulses
    _advance_us(virtual_clock, stim, at)
    stim.stop(balanced=True)
    assert board.trace().signal("enable")[-1] == (at, 0)
    assert round(virtual_clock.now() * 1e6) == at


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hz=st.one_of(st.integers(1, 150), st.sampled_from([2.5, 12.5, 33.3, 149.9])),
       pulse_us=st.integers(50, 450), channels=st.integers(1, 2),
       alternating=st.booleans(), ramps=st.booleans(),
       which=st.floats(0.0, 1.0), offset_us=st.integers(-50, 1000),
       how=st.sampled_from(["stop", "pause", "lead_off"]))
def test_no_unbalanced_pulse_after_any_balanced_stop(sim, stim, virtual_clock, hz, pulse_us,
                                                     channels, alternating, ramps, which,
                                                     offset_us, how):
    # The stop is asked for anywhere in or near a pulse of either channel (mostly inside
    # one, where a cut at once would leave it unbalanced).
    board, _ = sim
    pattern = "alternating" if alternating and channels == 2 else "synchronous"
    spec = CycleSpec(hz=hz, pulse_us=pulse_us, on_s=1.0, off_s=1.0 if pattern == "alternating" else 0.5,
                     ramp_up_s=0.3 if ramps else 0, ramp_down_s=0.3 if ramps else 0,
                     pattern=pattern, channels=channels)
    cycle, t0 = _start(stim, virtual_clock, spec)
    ch = int(which * channels) % channels
    w0 = cycle.contractions[ch][0][0]
    k = int(which * channels * len(cycle.widths[ch])) % len(cycle.widths[ch])
    asked = max(t0, t0 + START_US + w0 + cycle.grid.t(k) + offset_us)
    _advance_us(virtual_clock, stim, asked)
    if how == "lead_off":
        stim.set_amplitude(channels - 1, 0.0, balanced=True)
    stim.stop(balanced=True)
    tr = board.trace()
    stopped = tr.signal("enable")[-1]
    assert stopped[1] == 0
    longest_us = 2 * pulse_us + INTERPHASE_GAP_US
    assert asked <= stopped[0] <= asked + longest_us  # at most one pulse later
    _assert_every_pulse_balanced(tr, range(channels), since_us=t0)
    for c in range(channels):  # and nothing after the stop
        assert all(t1 <= stopped[0] for _t0, t1, _v in tr.current_segments(c))
