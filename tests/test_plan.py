"""The session plan: blocks cut into the steps the board plays, one at a time."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeapp.plan import block_steps
from schedules.model import Block
from schedules.validate import parse_prescription
from tests.strategies import valid_prescriptions


def _block(**kw) -> Block:
    base = dict(label="b", minutes=3, hz=50, pulse_us=300, on_s=10, off_s=20,
                ramp_up_s=2, ramp_down_s=1, pattern="synchronous")
    base.update(kw)
    return Block(**base)


def test_intermittent_block_plays_whole_cycles_of_contraction_and_rest():
    steps = list(block_steps(_block(), 0, channels=1))
    assert len(steps) == 6  # round(180 / 30)
    assert all(s.duration_us == 30_000_000 and s.windows_us == ((20, 10_000_020),) for s in steps)
    assert [s.cycle_index for s in steps] == list(range(6))
    assert all(s.starts_contraction and s.ends_contraction for s in steps)
    assert steps[0].spec.hz == 50 and steps[0].spec.ramp_up_s == 2


def test_alternating_channel_one_contracts_as_channel_zero_ends():
    steps = list(block_steps(_block(pattern="alternating", on_s=5, off_s=10), 0, channels=2))
    # from the start command: the board plays the chain 20 µs after it
    assert steps[0].windows_us == ((20, 5_000_020), (5_000_020, 10_000_020))
    assert steps[0].duration_us == 15_000_000


def test_continuous_block_is_cut_into_segments_with_ramps_only_at_its_ends():
    steps = list(block_steps(_block(minutes=2, off_s=0, on_s=25, ramp_up_s=3, ramp_down_s=4), 1, channels=2))
    assert len(steps) > 2
    assert math.isclose(sum(s.duration_s for s in steps), 120)
    assert steps[0].spec.ramp_up and not steps[0].spec.ramp_down and steps[0].starts_contraction
    assert all(not s.spec.ramp_up and not s.spec.ramp_down for s in steps[1:-1])
    assert steps[-1].spec.ramp_down and steps[-1].ends_contraction
    assert sum(s.ends_contraction for s in steps) == 1
    assert all(s.block_index == 1 for s in steps)


@settings(max_examples=60, deadline=None)
@given(valid_prescriptions())
def test_the_plan_matches_the_prescription(data):
    rx = parse_prescription(data)
    channels = len(rx.channels)
    steps = [s for i, b in enumerate(rx.blocks) for s in block_steps(b, i, channels)]
    # a continuous block is played in whole pulse-grid blocks: within one period per block
    slack = sum(1 / b.hz for b in rx.blocks if b.continuous) + 1e-9
    assert abs(sum(s.duration_s for s in steps) - rx.duration_s) <= slack
    assert sum(s.ends_contraction for s in steps) == rx.planned_contractions
    for s in steps:
        assert len(s.windows_us) == channels
        ramps = s.spec.ramp_up_s * s.spec.ramp_up + s.spec.ramp_down_s * s.spec.ramp_down
        assert ramps <= s.spec.on_s + 1e-9
        for w in s.windows_us:
            assert all(isinstance(edge, int) for edge in w)
            assert 0 <= w[0] < w[1] <= s.duration_us


def test_the_plan_says_when_the_board_plays_each_contraction():
    """7 Hz, on 1.5 s, alternating: channel 0's grid holds 10 pulses (1.428571 s), and the
    compiled cycle plays channel 1 from there; the plan's windows are the compiled ones."""
    from hw.pins import load_pin_map
    from hw.waveform import compile_cycle

    step = next(block_steps(_block(pattern="alternating", hz=7, on_s=1.5, off_s=3, ramp_up_s=0.5,
                                   ramp_down_s=0.5), 0, channels=2))
    assert step.windows_us == ((20, 1_428_591), (1_428_591, 2_857_162))
    compiled = compile_cycle(step.spec, load_pin_map())
    assert tuple((a + 20, b + 20) for (a, b), in compiled.contractions) == step.windows_us
    assert compiled.duration_us == step.duration_us
    for ch, (a, b) in enumerate(step.windows_us):
        a, b = a - 20, b - 20
        pulses = compiled.planned_pulses(ch)
        assert pulses[0].start_us == a and all(a <= p.start_us < b for p in pulses)


PINS = None


def _pins():
    global PINS
    if PINS is None:
        from hw.pins import load_pin_map
        PINS = load_pin_map()
    return PINS


def _adjusted(block: Block, ends: bool) -> Block:
    for param, rng in block.ranges.items():  # a patient may move it to either end
        block = block.with_value(param, rng.max if ends else rng.min)
    return block


@settings(max_examples=120, deadline=None)
@given(valid_prescriptions(fine=True) | valid_prescriptions(), st.booleans())
def test_every_step_of_every_valid_prescription_compiles(data, ends):
    """Whatever the validator accepts (fractional frequencies and lengths, continuous and
    intermittent, at either end of the patient's ranges) plans and compiles."""
    from hw.waveform import compile_cycle

    rx = parse_prescription(data)
    channels = len(rx.channels)
    for i, block in enumerate(rx.blocks):
        block = _adjusted(block, ends)
        steps = list(block_steps(block, i, channels))
        assert steps
        for spec in {s.spec for s in steps}:
            compiled = compile_cycle(spec, _pins())
            step = next(s for s in steps if s.spec == spec)
            assert compiled.duration_us == step.duration_us
            from hw.waveform import CHAIN_START_DELAY_US as D
            assert tuple((a + D, min(b + D, step.duration_us))
                         for (a, b), in compiled.contractions[:channels]) == step.windows_us


@pytest.mark.parametrize("hz, minutes", [(130.52, 1.5), (27.12, 0.5), (21, 0.51)])
def test_a_continuous_block_whose_length_the_period_does_not_divide_plays(hz, minutes):
    """A remainder too short for a pulse joins the last segment; the block plays
    floor(minutes * 60 * hz) pulses on the grid (rounded down, never up)."""
    from hw.waveform import Grid, compile_cycle

    block = _block(minutes=minutes, hz=hz, on_s=12.75, off_s=0, ramp_up_s=2, ramp_down_s=1)
    steps = list(block_steps(block, 0, channels=1))
    grid = Grid.for_hz(hz)
    pulses = sum(len(compile_cycle(s.spec, _pins()).widths[0]) for s in steps)
    assert pulses == math.floor(minutes * 60 * 1_000_000 / grid.period)
    total_us = sum(s.duration_us for s in steps)
    assert total_us == grid.t(pulses) <= minutes * 60 * 1_000_000


@settings(max_examples=80, deadline=None)
@given(valid_prescriptions(fine=True) | valid_prescriptions(), st.booleans())
def test_a_continuous_block_ends_within_one_period_before_its_minutes_never_after(data, ends):
    from hw.waveform import Grid, compile_cycle

    rx = parse_prescription(data)
    for i, block in enumerate(rx.blocks):
        block = _adjusted(block, ends)
        if not block.continuous:
            continue
        steps = list(block_steps(block, i, len(rx.channels)))
        grid = Grid.for_hz(block.hz)
        compiled = {s.spec: compile_cycle(s.spec, _pins()) for s in steps}
        pulses = sum(len(compiled[s.spec].widths[0]) for s in steps)
        played_us = sum(compiled[s.spec].duration_us for s in steps)
        prescribed_us = Fraction(repr(block.minutes)) * 60 * 1_000_000
        assert played_us == grid.t(pulses)
        assert played_us <= prescribed_us < played_us + grid.period + 1


@pytest.mark.parametrize("minutes", [2.02, 5.35, 60])
def test_a_coarse_grid_never_makes_a_segment_longer_than_the_driver_plays(minutes):
    """1.01 Hz repeats its pulse grid only every 100 s (101 pulses): a remainder on top of a
    whole grid block would exceed the longest segment the driver plays, so it stands alone."""
    from hw.waveform import MAX_SEGMENT_S, compile_cycle

    block = _block(minutes=minutes, hz=1.01, pulse_us=50, on_s=1, off_s=0, ramp_up_s=0,
                   ramp_down_s=0)
    steps = list(block_steps(block, 0, channels=1))
    assert all(s.spec.on_s <= MAX_SEGMENT_S for s in steps)
    for s in steps:
        compile_cycle(s.spec, _pins())
    assert steps[0].starts_contraction and steps[-1].ends_contraction


@pytest.mark.parametrize("continuous", [False, True])
def test_every_step_of_a_block_holds_the_one_view_of_its_wave_the_plan_built(continuous):
    # the block's fields are neither copied into each spec nor checked again: one frozen
    # view per block (hw.waveform.BlockWave), held by every step
    from hw.waveform import WAVE_FIELDS, BlockWave
    block = _block(off_s=0, minutes=1) if continuous else _block()
    steps = list(block_steps(block, 0, 2 if not continuous else 1))
    assert len(steps) > 1
    waves = {id(step.spec.wave) for step in steps}
    assert len(waves) == 1
    wave = steps[0].spec.wave
    assert wave.validated and wave == BlockWave.of(block)
    assert all(getattr(wave, name) == getattr(block, name) for name in WAVE_FIELDS)
    assert not hasattr(steps[0].spec, "__dict__")        # the spec keeps no copy of its own
