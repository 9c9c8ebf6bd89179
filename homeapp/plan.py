"""The session plan: a prescription's blocks cut into the steps the board plays one at a time.

A step is one contraction cycle of an intermittent block (contraction then rest), or one
segment of a continuous block. A continuous block is cut here (`continuous_segments`) so
that even a 60-minute continuous block never has more than one segment queued on the
board: a wave outlives a crashed app, and the heartbeat watchdog covers only the rest.

The segmenting rule (docs/contract.md says the same to the clinician): a continuous block
plays `floor(minutes * 60 * hz)` pulses — its length rounded DOWN to whole pulse periods,
never up, so it ends no later than prescribed and less than one period early. Every
segment but the last is a whole number of pulse-grid blocks (so the pulse period runs on
across segment boundaries to the µs); the first ramps up, the last ramps down, and the
last takes whatever remains, so there is never a piece too short to hold a pulse.

Pure: no clock, no board. Times are integer µs from the step's start command (the board
plays `CHAIN_START_DELAY_US` after it), and they come from the waveform compiler (`contraction_windows_us`, `cycle_duration_us`): the plan
says exactly what the board plays, never its own idea of it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

from hw.waveform import (CHAIN_START_DELAY_US, MAX_SEGMENT_S, BlockWave, CycleSpec, Grid,
                         contraction_windows_us, cycle_duration_us, pulse_count)
from schedules.model import Block

#: `[start_us, end_us)` of a channel's contraction within its step.
Window = tuple[int, int]


@dataclass(frozen=True)
class Step:
    """One cycle (or continuous segment) the board plays, and when each channel contracts."""

    block_index: int
    cycle_index: int            # index of the contraction within the block
    cycles_total: int
    spec: CycleSpec             # what the board plays: compiled by hw.waveform
    windows_us: tuple[Window | None, ...]  # per channel: when it contracts within the step
    duration_us: int            # the whole step, as the board plays it
    starts_contraction: bool    # the step begins a contraction (False for a later segment)
    ends_contraction: bool      # the step ends one (False for all but a continuous block's last)

    @property
    def duration_s(self) -> float:
        """The whole step in seconds (for display; compare `duration_us`)."""
        return self.duration_us / 1_000_000


class PlanError(Exception):
    """A block the plan cannot cut into steps the board can play (a bug for any block the
    validator accepts: the property tests cover the whole valid space)."""


#: A continuous block's segments last about this long.
SEGMENT_S = 10


def _dec(x: float) -> Fraction:
    """A float as the decimal the clinician wrote (0.1 is 1/10)."""
    return Fraction(repr(float(x)))


def _on_s_for(grid: Grid, pulses: int) -> float:
    """An `on_s` whose compiled contraction holds exactly `pulses` pulses and lasts
    exactly `grid.t(pulses)` µs (so the next segment starts on the grid)."""
    span_us = grid.t(pulses)
    for on_s in (float(pulses * grid.period / 1_000_000), span_us / 1_000_000):
        if pulse_count(on_s, grid) == pulses and round(_dec(on_s) * 1_000_000) == span_us:
            return on_s
    raise PlanError(f"no on_s holds exactly {pulses} pulses of {float(grid.period):g} µs")


def continuous_block_pulses(block: Block) -> int:
    """How many pulses a continuous block plays: its minutes rounded down to whole pulse
    periods (at least one)."""
    grid = Grid.for_hz(block.hz)
    return max(1, math.floor(_dec(block.minutes) * 60 * 1_000_000 / grid.period))


def continuous_segments(block: Block, channels: int, segment_s: float = SEGMENT_S, *,
                        wave: BlockWave | None = None) -> list[tuple[CycleSpec, int]]:
    """A continuous block (off_s = 0) as `(spec, repeat)` segments played back to back
    (see the module notes for the rule). `wave`: the block's `BlockWave`, when the caller
    has built it already."""
    wave = wave or BlockWave.of(block)
    grid = Grid.for_hz(block.hz)
    q = grid.block
    block_s = Fraction(grid.block_us, 1_000_000)
    total_pulses = continuous_block_pulses(block)
    whole_blocks = total_pulses // q
    seg_blocks = max(1, math.floor(_dec(segment_s) / block_s + Fraction(1, 2)))
    ramps_s = _dec(block.ramp_up_s) + _dec(block.ramp_down_s)
    min_blocks = max(1, math.ceil(max(_dec(block.ramp_up_s), _dec(block.ramp_down_s), 1) / block_s))
    seg_blocks = max(seg_blocks, min_blocks)
    # The last segment may hold up to two segments' worth (and the remainder): keep it
    # under the driver's longest segment.
    seg_blocks = max(1, min(seg_blocks, math.floor(Fraction(MAX_SEGMENT_S) / 2 / block_s)))

    # off_s is 0 and the pattern synchronous already (alternating needs off_s >= on_s):
    # a segment adds only its own length and which ramps it keeps
    def spec(pulses: int, **ramps: bool) -> CycleSpec:
        return CycleSpec(wave=wave, channels=channels, segment_on_s=_on_s_for(grid, pulses), **ramps)

    total_us = total_pulses * grid.period
    if total_us < 2 * max(ramps_s, 1) * 1_000_000:
        return [(spec(total_pulses), 1)]
    if whole_blocks <= seg_blocks:
        if total_us <= MAX_SEGMENT_S * 1_000_000:
            return [(spec(total_pulses), 1)]
        # A coarse grid (e.g. 1.01 Hz: 101 pulses in 100 s) with a remainder past the
        # driver's longest segment: the whole grid blocks, then the remainder (at least
        # MAX_SEGMENT_S minus one grid block, so it holds the ramp down).
        return [(spec(whole_blocks * q, ramp_down=False), 1),
                (spec(total_pulses - whole_blocks * q, ramp_up=False), 1)]
    first = seg_blocks if whole_blocks >= 2 * seg_blocks else whole_blocks // 2
    n_mid = max(0, whole_blocks - 2 * seg_blocks) // seg_blocks
    out = [(spec(first * q, ramp_down=False), 1)]
    if n_mid:
        out.append((spec(seg_blocks * q, ramp_up=False, ramp_down=False), n_mid))
    # the last: one to two segments' worth of grid blocks and the pulses that remain
    last = total_pulses - (first + n_mid * seg_blocks) * q
    if last * grid.period > MAX_SEGMENT_S * 1_000_000:
        # a coarse grid: its whole blocks, then the remainder (over MAX_SEGMENT_S minus
        # one grid block, so it holds the ramp down)
        last_blocks = last // q
        out.append((spec(last_blocks * q, ramp_up=False, ramp_down=False), 1))
        last -= last_blocks * q
    out.append((spec(last, ramp_up=False), 1))
    return out


def _step(spec: CycleSpec, **kw) -> Step:
    # Windows count from the start command: the board plays the chain CHAIN_START_DELAY_US
    # later. The next step is started `duration_us` after this one (so the grid runs on),
    # which may come before a window's end shifted by that delay: it ends with the step.
    duration_us = cycle_duration_us(spec)
    windows = tuple((a + CHAIN_START_DELAY_US, min(b + CHAIN_START_DELAY_US, duration_us))
                    for a, b in contraction_windows_us(spec))
    return Step(spec=spec, windows_us=windows, duration_us=duration_us, **kw)


def block_steps(block: Block, block_index: int, channels: int) -> Iterator[Step]:
    """The steps of one block, with the block's values as they are now."""
    wave = BlockWave.of(block)  # once per block: its steps hold it, none copies or re-checks it
    if block.continuous:
        segments = [spec for spec, repeat in continuous_segments(block, channels, wave=wave)
                    for _ in range(repeat)]
        last = len(segments) - 1
        for i, spec in enumerate(segments):
            yield _step(spec, block_index=block_index, cycle_index=0, cycles_total=1,
                        starts_contraction=i == 0, ends_contraction=i == last)
        return
    spec = CycleSpec(wave=wave, channels=channels)
    step = _step(spec, block_index=block_index, cycle_index=0, cycles_total=block.cycles,
                 starts_contraction=True, ends_contraction=True)
    for i in range(block.cycles):
        yield dataclasses.replace(step, cycle_index=i)
