"""The session plan: a prescription's blocks cut into the steps the board plays one at a time.

A step is one contraction cycle of an intermittent block (contraction then rest), or one
segment of a continuous block (the block is cut into segments of about `on_s`, so that even
a 60-minute continuous block never has more than one segment queued on the board: a wave
outlives a crashed app, and the heartbeat watchdog covers only the rest).

Pure: no clock, no board. Times are seconds relative to the step's start.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from schedules.model import Block

Window = tuple[float, float]


@dataclass(frozen=True)
class Step:
    block_index: int
    cycle_index: int            # index of the contraction within the block
    cycles_total: int
    hz: float
    pulse_us: float
    on_s: float                 # pulses from 0 to on_s (this segment, for a continuous block)
    off_s: float                # the step lasts on_s + off_s (alternating: channel 1 contracts in on_s..2*on_s)
    ramp_up_s: float            # 0 for a segment that does not start the contraction
    ramp_down_s: float          # 0 for a segment that does not end the contraction
    pattern: str
    channels: int
    windows: tuple[Window | None, ...]   # per channel: when it contracts within the step
    starts_contraction: bool    # the step begins a contraction (False for a middle segment)
    ends_contraction: bool      # the step ends one (False for all but a continuous block's last)

    @property
    def duration_s(self) -> float:
        """The whole step: an alternating cycle fits channel 1's contraction in its rest."""
        return self.on_s + self.off_s


def _windows(on_s: float, pattern: str, channels: int) -> tuple[Window | None, ...]:
    if pattern == "alternating" and channels == 2:
        # channel 1's contraction starts as channel 0's ends (validated: off_s >= on_s)
        return ((0.0, on_s), (on_s, 2 * on_s))
    return tuple((0.0, on_s) for _ in range(channels))


def continuous_segments(total_s: float, on_s: float) -> list[float]:
    """Cut `total_s` into equal segments no longer than `on_s` (and at least half of it)."""
    count = max(1, math.ceil(total_s / on_s - 1e-9))
    return [total_s / count] * count


def block_steps(block: Block, block_index: int, channels: int) -> Iterator[Step]:
    """The steps of one block, with the block's values as they are now."""
    if block.continuous:
        segments = continuous_segments(block.duration_s, block.on_s)
        last = len(segments) - 1
        for i, seg_s in enumerate(segments):
            yield Step(block_index=block_index, cycle_index=0, cycles_total=1,
                       hz=block.hz, pulse_us=block.pulse_us, on_s=seg_s, off_s=0.0,
                       ramp_up_s=block.ramp_up_s if i == 0 else 0.0,
                       ramp_down_s=block.ramp_down_s if i == last else 0.0,
                       pattern="synchronous", channels=channels,
                       windows=tuple((0.0, seg_s) for _ in range(channels)),
                       starts_contraction=i == 0, ends_contraction=i == last)
        return
    off_s = block.off_s
    for i in range(block.cycles):
        yield Step(block_index=block_index, cycle_index=i, cycles_total=block.cycles,
                   hz=block.hz, pulse_us=block.pulse_us, on_s=block.on_s, off_s=off_s,
                   ramp_up_s=block.ramp_up_s, ramp_down_s=block.ramp_down_s,
                   pattern=block.pattern, channels=channels,
                   windows=_windows(block.on_s, block.pattern, channels),
                   starts_contraction=True, ends_contraction=True)
