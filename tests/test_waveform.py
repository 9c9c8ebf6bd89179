"""The waveform compiler alone (no socket): timing, pulse shape, ramps and pigpio's limits
over the whole valid parameter space.

The checks do not trust the compiler's own bookkeeping: each cycle's chain is played by
an independent interpreter here (loops, delays, waves), the resulting edges are turned
back into biphasic pulses, and those are compared with what the prescription asks,
computed here from the spec with exact fractions. The waves are also created in the
simulator's re-implementation of pigpio's wave table (`hw.sim.waves`), which refuses
what pigpiod would refuse (pulses per wave, control blocks, OOL words, chain grammar).
"""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hw import pigpio_limits as L
from hw.exc import WaveformError
from hw.pins import load_pin_map
from hw.sim import waves as simwaves
from homeapp.plan import continuous_segments
from hw.waveform import (CompiledCycle, CycleSpec, Grid, compile_cycle,
                         ramp_widths)
from schedules.limits import INTERPHASE_GAP_US
from schedules.model import Block
from tests.strategies import valid_prescriptions

PINS = load_pin_map()


# ----------------------------------------------------------------------------- helpers
def play(cycle: CompiledCycle):
    """Interpret the chain tokens: yields (t_us, on_mask, off_mask) for every edge entry,
    and returns the chain's total length (µs) via the last yielded None entry."""
    tokens = cycle.tokens
    events: list[tuple[int, int, int]] = []
    t = 0

    def run(lo: int, hi: int) -> None:
        nonlocal t
        i = lo
        while i < hi:
            tok = tokens[i]
            if tok[0] == "wave":
                for on, off, delay in cycle.waves[tok[1]].pulses:
                    if on or off:
                        events.append((t, on, off))
                    t += delay
                i += 1
            elif tok[0] == "delay":
                t += tok[1]
                i += 1
            elif tok[0] == "loop":
                depth, j = 1, i + 1
                while depth:
                    depth += {"loop": 1, "repeat": -1}.get(tokens[j][0], 0)
                    j += 1
                count = tokens[j - 1][1]
                for _ in range(count):
                    run(i + 1, j - 1)
                i = j
            else:
                raise AssertionError(f"unexpected token {tok}")

    run(0, len(tokens))
    return events, t


def pulses_of(events, leg_a: int, leg_b: int):
    """Biphasic pulses of one channel: (start, a_width, gap, b_width); also asserts the
    two legs are never high together and every edge is a real change."""
    level_a = level_b = False
    out = []
    cur = None
    for t, on, off in events:
        if on & leg_a or off & leg_a or on & leg_b or off & leg_b:
            na = (level_a or bool(on & leg_a)) and not off & leg_a
            nb = (level_b or bool(on & leg_b)) and not off & leg_b
            assert not (na and nb), f"both legs high at {t}"
            if na and not level_a:
                assert cur is None, f"leg A rises again at {t} before the B phase"
                cur = [t, None, None, None]
            if level_a and not na:
                cur[1] = t - cur[0]
            if nb and not level_b:
                assert cur is not None and cur[1] is not None, f"leg B rises without an A phase at {t}"
                cur[2] = t - cur[0] - cur[1]
                b_start = t
            if level_b and not nb:
                cur[3] = t - b_start
                out.append(tuple(cur))
                cur = None
            level_a, level_b = na, nb
    assert not level_a and not level_b, "a leg is left high at the end of the cycle"
    assert cur is None
    return out


def expected(spec: CycleSpec):
    """(start times relative to the contraction, widths) computed here from the spec."""
    hz = Fraction(repr(float(spec.hz)))
    period = Fraction(10**6) / hz
    if period.denominator > 150:
        period = Fraction(round(1e6 / spec.hz))
    n = max(1, math.floor(Fraction(repr(float(spec.on_s))) * 10**6 / period + Fraction(1, 10**6)))
    starts = [math.floor(k * period + Fraction(1, 2)) for k in range(n)]
    return starts, n, period


def check_cycle(spec: CycleSpec, cycle: CompiledCycle) -> dict:
    events, total = play(cycle)
    w_max = math.floor(spec.pulse_us + 0.5)
    starts, n, period = expected(spec)
    assert total == round((spec.on_s + spec.off_s) * 1e6) == cycle.duration_us
    span = math.floor(n * period + Fraction(1, 2))
    per_channel = []
    for ch in range(spec.channels):
        a, b = (1 << PINS.legs[ch][0]), (1 << PINS.legs[ch][1])
        ps = pulses_of(events, a, b)
        t0 = span if (spec.pattern == "alternating" and ch == 1) else 0
        # count, exact timing on the grid, balance, gap
        assert len(ps) == n
        assert [p[0] - t0 for p in ps] == starts
        for p in ps:
            assert p[1] == p[3], "phases not balanced"
            assert p[2] == INTERPHASE_GAP_US
            assert 1 <= p[1] <= w_max
        widths = [p[1] for p in ps]
        assert widths == list(cycle.widths[ch])
        assert widths == expected_widths(spec, n, cycle.foot_blocks * Grid.for_hz(spec.hz).block)
        per_channel.append(ps)
    if spec.channels == 2 and spec.pattern == "synchronous":
        assert [p[0] for p in per_channel[0]] == [p[0] for p in per_channel[1]]
    # nothing after the contraction(s): the rest is silent to the cycle's end
    last = max(t for t, _, _ in events)
    assert last < (2 * span if spec.pattern == "alternating" else span)
    return {"pulses": per_channel}


def half_up(x) -> int:
    return math.floor(Fraction(x) + Fraction(1, 2))


def expected_widths(spec: CycleSpec, n: int, foot: int) -> list[int]:
    """The documented ramp: pulse k of an n-pulse ramp-up is max(1, round(W(k+1)/(n+1)));
    the ramp-down mirrors it; with a foot, the first `foot` pulses hold the first width of
    a linear ramp over the rest."""
    w = half_up(Fraction(repr(float(spec.pulse_us))))
    hz = Fraction(repr(float(spec.hz)))
    n_up = half_up(Fraction(repr(float(spec.ramp_up_s))) * hz) if spec.ramp_up else 0
    n_down = half_up(Fraction(repr(float(spec.ramp_down_s))) * hz) if spec.ramp_down else 0
    while n_up + n_down > n - 1:  # the plateau keeps at least one pulse at W
        if n_down >= n_up:
            n_down -= 1
        else:
            n_up -= 1

    def ramp(m):
        if foot and m > foot:
            lin = [max(1, half_up(Fraction(w * (k + 1), m - foot + 1))) for k in range(m - foot)]
            return [lin[0]] * foot + lin
        return [max(1, half_up(Fraction(w * (k + 1), m + 1))) for k in range(m)]

    up, down = ramp(n_up), ramp(n_down)[::-1]
    # near zero up to W: only the last ramp pulse may round (half up) to W itself
    assert all(x < w or w / (len(up) + 1) <= 0.5 for x in up)
    return up + [w] * (n - n_up - n_down) + down


def ramp_parts(widths, w_max):
    i = 0
    while i < len(widths) and widths[i] < w_max:
        i += 1
    j = len(widths)
    while j > i and widths[j - 1] < w_max:
        j -= 1
    return widths[:i], widths[i:j], widths[j:]


def check_limits(cycle: CompiledCycle) -> None:
    """Create the waves and parse the chain in the simulator's pigpio wave table."""
    assert cycle.wave_cbs <= L.WAVE_CB_BUDGET
    assert cycle.wave_ools <= L.WAVE_OOL_BUDGET
    assert cycle.chain_cbs <= L.PI_CHAIN_MAX_CBS
    assert cycle.counters <= L.PI_CHAIN_MAX_COUNTERS
    assert len(cycle.waves) <= L.PI_MAX_WAVES
    table = simwaves.WaveTable()
    ids = []
    for w in cycle.waves:
        assert len(w.pulses) * 12 <= 65536, "one wave_add_generic exceeds pigpiod's 64 KiB"
        assert len(w.pulses) < L.PI_WAVE_MAX_PULSES
        assert w.cbs == L.wave_cbs(w.pulses, dma_lite=True)
        table.add_generic(list(w.pulses))
        ids.append(table.create())
    script = cycle.chain_bytes(ids)
    assert L.chain_cbs(script, dma_lite=True) == cycle.chain_cbs
    simwaves.parse_chain(script, table)  # raises on anything pigpio refuses


# ----------------------------------------------------------------------------- strategies
half = st.integers(0, 240).map(lambda k: k / 2)


@st.composite
def specs(draw):
    channels = draw(st.integers(1, 2))
    pattern = draw(st.sampled_from(("synchronous", "alternating"))) if channels == 2 else "synchronous"
    on = draw(st.integers(2, 120).map(lambda k: k / 2))
    up = draw(st.integers(0, int(min(5, on) * 2)).map(lambda k: k / 2))
    down = draw(st.integers(0, int(min(5, on - up) * 2)).map(lambda k: k / 2))
    off_lo = on if pattern == "alternating" else 0
    off = draw(st.integers(int(off_lo * 2), 240).map(lambda k: k / 2))
    hz = draw(st.one_of(st.integers(1, 150), st.sampled_from((149, 147, 143, 139, 150, 125, 2.5, 12.5, 33.3))))
    pulse = draw(st.integers(50, 450))
    return CycleSpec(hz=hz, pulse_us=pulse, on_s=on, off_s=off, ramp_up_s=up, ramp_down_s=down,
                     pattern=pattern, channels=channels)


HEAVIEST = CycleSpec(hz=150, pulse_us=450, on_s=60, off_s=120, ramp_up_s=5, ramp_down_s=5,
                     pattern="alternating", channels=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
@example(HEAVIEST)
@example(CycleSpec(hz=149, pulse_us=450, on_s=60, off_s=60, ramp_up_s=5, ramp_down_s=5,
                   pattern="alternating", channels=2))
@example(CycleSpec(hz=149, pulse_us=50, on_s=10, off_s=10, ramp_up_s=5, ramp_down_s=5,
                   pattern="alternating", channels=2))
@example(CycleSpec(hz=150, pulse_us=450, on_s=60, off_s=0, ramp_up_s=5, ramp_down_s=5,
                   pattern="synchronous", channels=2))
@example(CycleSpec(hz=1, pulse_us=450, on_s=60, off_s=120, ramp_up_s=5, ramp_down_s=5,
                   pattern="alternating", channels=2))
@example(CycleSpec(hz=1, pulse_us=50, on_s=1, off_s=0, ramp_up_s=0, ramp_down_s=0))
@example(CycleSpec(hz=147, pulse_us=450, on_s=1, off_s=1, ramp_up_s=0.5, ramp_down_s=0.5,
                   pattern="alternating", channels=2))
def test_every_valid_cycle_is_exact_and_fits_pigpio(spec):
    cycle = compile_cycle(spec, PINS)
    check_limits(cycle)
    check_cycle(spec, cycle)
    if cycle.foot_blocks:  # a foot only when the plain ramps would not fit, and the smallest
        for smaller in range(cycle.foot_blocks):
            c = compile_cycle(spec, PINS, foot=smaller)
            assert c.wave_cbs > L.WAVE_CB_BUDGET or c.wave_ools > L.WAVE_OOL_BUDGET


def test_heaviest_block_resources():
    """The heaviest valid block: 150 Hz, two channels alternating, 5 s ramps, 60 s
    contractions. Its figures are in the report; the foot keeps it under the CB budget."""
    cycle = compile_cycle(HEAVIEST, PINS)
    check_limits(cycle)
    assert cycle.wave_cbs > 0.9 * L.WAVE_CB_BUDGET  # it really is near the limit
    assert cycle.foot_blocks >= 2
    sync = compile_cycle(CycleSpec(hz=150, pulse_us=450, on_s=60, off_s=120, ramp_up_s=5,
                                   ramp_down_s=5, channels=2), PINS)
    assert sync.foot_blocks == 0  # synchronous never needs a foot


def test_plateau_is_a_looped_wave_not_a_giant_one():
    cycle = compile_cycle(CycleSpec(hz=150, pulse_us=300, on_s=60, off_s=60, ramp_up_s=0,
                                    ramp_down_s=0), PINS)
    assert len(cycle.waves) == 1
    assert len(cycle.waves[0].pulses) == 4 * 3  # one grid block of 3 pulses (20,000 µs)
    assert cycle.tokens[:3] == (("loop",), ("wave", 0), ("repeat", 3000))
    # the rest: 60 s as a loop of 50 ms chain delays
    assert ("delay", 50_000) in cycle.tokens and ("repeat", 1200) in cycle.tokens


def test_grid_block_is_an_exact_multiple_of_the_period():
    for hz in range(1, 151):
        g = Grid.for_hz(hz)
        assert g.block == hz // math.gcd(hz, 10**6)
        assert g.block * Fraction(10**6, hz) == g.block_us
        # |t_k - k*1e6/hz| <= 1/2, in integers
        assert all(abs(2 * (g.t(k) * hz - k * 10**6)) <= hz for k in range(0, 20000, 7))


def test_no_drift_across_consecutive_cycles():
    """Cycle n starts at n * duration: pulse k of cycle n at n*D + t_k, for any n."""
    spec = CycleSpec(hz=149, pulse_us=200, on_s=3, off_s=2.5, ramp_up_s=1, ramp_down_s=1)
    cycle = compile_cycle(spec, PINS)
    events, total = play(cycle)
    assert total == 5_500_000
    starts, n, period = expected(spec)
    # over 1000 cycles the 447th pulse of cycle m stays within 0.5 µs of the ideal grid
    # measured from the block start (the cycle is a whole number of µs, so no drift)
    for m in (0, 1, 999):
        ideal = m * Fraction(5_500_000) + 446 * period
        assert abs(m * total + starts[446] - ideal) <= Fraction(1, 2)


def test_ramp_widths_documented_formula():
    assert ramp_widths(4, 300) == [60, 120, 180, 240]
    assert ramp_widths(1, 450) == [225]
    assert ramp_widths(0, 450) == []
    w = ramp_widths(750, 450)
    assert w[0] == 1 and w[-1] == 449 and w == sorted(w)


@pytest.mark.parametrize("field,value", [("hz", 151), ("hz", 0.5), ("pulse_us", 49), ("pulse_us", 451),
                                         ("off_s", 121), ("ramp_up_s", 5.5), ("on_s", 121)])
def test_spec_outside_device_limits_names_the_field(field, value):
    base = dict(hz=50, pulse_us=300, on_s=10, off_s=10, ramp_up_s=1, ramp_down_s=1)
    base[field] = value
    with pytest.raises(WaveformError, match=field):
        CycleSpec(**base)


def test_spec_rules():
    with pytest.raises(WaveformError, match="ramp"):
        CycleSpec(hz=50, pulse_us=300, on_s=3, off_s=10, ramp_up_s=2, ramp_down_s=2)
    with pytest.raises(WaveformError, match="off_s"):
        CycleSpec(hz=50, pulse_us=300, on_s=10, off_s=5, ramp_up_s=1, ramp_down_s=1,
                  pattern="alternating", channels=2)
    with pytest.raises(WaveformError, match="2 channels"):
        CycleSpec(hz=50, pulse_us=300, on_s=10, off_s=10, ramp_up_s=1, ramp_down_s=1,
                  pattern="alternating", channels=1)
    with pytest.raises(WaveformError, match="channels"):
        CycleSpec(hz=50, pulse_us=300, on_s=10, off_s=10, ramp_up_s=1, ramp_down_s=1, channels=3)
    # a continuous segment without ramps may be longer than a prescription's on_s
    CycleSpec(hz=50, pulse_us=300, on_s=120, off_s=0, ramp_up_s=5, ramp_down_s=5,
              ramp_up=False, ramp_down=False)


def test_from_block():
    b = Block(label="x", minutes=10, hz=35, pulse_us=250, on_s=5, off_s=15, ramp_up_s=1,
              ramp_down_s=1, pattern="synchronous")
    spec = CycleSpec.from_block(b, channels=2)
    assert (spec.hz, spec.pulse_us, spec.on_s, spec.off_s, spec.channels) == (35, 250, 5, 15, 2)


def test_continuous_block_segments_join_on_the_grid():
    b = Block(label="c", minutes=2, hz=149, pulse_us=300, on_s=10, off_s=0, ramp_up_s=2,
              ramp_down_s=3)
    segs = continuous_segments(b, channels=1, segment_s=10)
    t = 0
    starts, widths = [], []
    for spec, repeat in segs:
        cycle = compile_cycle(spec, PINS)
        check_limits(cycle)
        events, total = play(cycle)
        ps = pulses_of(events, 1 << PINS.ch0_a, 1 << PINS.ch0_b)
        for _ in range(repeat):
            starts += [t + p[0] for p in ps]
            widths += [p[1] for p in ps]
            t += total
    assert t == 120_000_000
    period = Fraction(10**6, 149)
    assert len(starts) == 120 * 149
    assert all(abs(s - k * period) <= Fraction(1, 2) for k, s in enumerate(starts))
    up, plateau, down = ramp_parts(widths, 300)
    assert len(up) == 2 * 149 and len(down) == 3 * 149 and set(plateau) == {300}
    assert segs[0][0].ramp_down is False and segs[-1][0].ramp_up is False


@pytest.mark.parametrize("hz, on_s, up_s, down_s, expected", [
    (2, 2, 1, 1, [133, 267, 400, 200]),   # was 133/267/267/133: never the prescribed 400
    (1, 1, 0, 1, [400]),                  # was one pulse at 200 µs
])
def test_ramps_that_fill_the_contraction_still_reach_the_width(hz, on_s, up_s, down_s, expected):
    spec = CycleSpec(hz=hz, pulse_us=400, on_s=on_s, off_s=on_s, ramp_up_s=up_s, ramp_down_s=down_s)
    cycle = compile_cycle(spec, PINS)
    events, _ = play(cycle)
    played = [p[1] for p in pulses_of(events, 1 << PINS.ch0_a, 1 << PINS.ch0_b)]
    assert played == expected


def _played_widths(spec: CycleSpec) -> list[list[int]]:
    """Per channel, the A-phase widths the compiled chain plays, read from its waves."""
    events, _ = play(compile_cycle(spec, PINS))
    legs = ((PINS.ch0_a, PINS.ch0_b), (PINS.ch1_a, PINS.ch1_b))[:spec.channels]
    return [[p[1] for p in pulses_of(events, 1 << a, 1 << b)] for a, b in legs]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_prescriptions(fine=True) | valid_prescriptions(), st.booleans())
def test_the_top_of_every_contraction_is_the_prescribed_width(data, ends):
    """Over the valid space (either end of the patient's ranges): every contraction of an
    intermittent block, and a continuous block as a whole, reaches round(pulse_us)."""
    from homeapp.plan import block_steps
    from schedules.validate import parse_prescription

    rx = parse_prescription(data)
    for i, block in enumerate(rx.blocks):
        for param, rng in block.ranges.items():
            block = block.with_value(param, rng.max if ends else rng.min)
        width = half_up(Fraction(repr(float(block.pulse_us))))
        specs_played = list(dict.fromkeys(s.spec for s in block_steps(block, i, len(rx.channels))))
        per_spec = [_played_widths(spec) for spec in specs_played]
        if block.continuous:
            assert max(max(ws[0]) for ws in per_spec) == width
        else:
            (channels,) = per_spec
            assert all(max(ws) == width for ws in channels)


def test_a_spec_from_a_validated_block_is_not_checked_against_the_device_limits_again():
    """The validator is the one check of a block's values; `CycleSpec.from_block` checks
    only what the cycle adds (here a segment longer than the block's on_s allows, without
    ramps), while a spec built directly still meets the compiler's own fence."""
    from types import SimpleNamespace
    block = SimpleNamespace(hz=50, pulse_us=300, on_s=10, off_s=0, ramp_up_s=1, ramp_down_s=1,
                            pattern="synchronous")
    seg = CycleSpec.from_block(block, 2, on_s=100, ramp_up=False, ramp_down=False)
    assert seg == CycleSpec(hz=50, pulse_us=300, on_s=100, off_s=0, ramp_up_s=1, ramp_down_s=1,
                            channels=2, ramp_up=False, ramp_down=False)
    with pytest.raises(WaveformError, match="on_s"):        # the segment's own rules still hold
        CycleSpec.from_block(block, 1, on_s=121)
    with pytest.raises(WaveformError, match="alternating"):
        CycleSpec.from_block(block, 1, pattern="alternating")
