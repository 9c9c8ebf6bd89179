"""The session plan: a prescription's blocks cut into the steps the board plays one at a time.

A step is one contraction cycle of an intermittent block (contraction then rest), or one
segment of a continuous block. A continuous block is cut by the waveform compiler
(`hw.waveform.continuous_segments`: whole pulse-grid blocks, so the pulse period runs on
across segment boundaries, the first ramping up, the last ramping down) so that even a
60-minute continuous block never has more than one segment queued on the board: a wave
outlives a crashed app, and the heartbeat watchdog covers only the rest.

Pure: no clock, no board. Times are seconds relative to the step's start.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from hw.waveform import CycleSpec, continuous_segments
from schedules.model import Block

Window = tuple[float, float]


@dataclass(frozen=True)
class Step:
    block_index: int
    cycle_index: int            # index of the contraction within the block
    cycles_total: int
    spec: CycleSpec             # what the board plays: compiled by hw.waveform
    windows: tuple[Window | None, ...]   # per channel: when it contracts within the step
    starts_contraction: bool    # the step begins a contraction (False for a later segment)
    ends_contraction: bool      # the step ends one (False for all but a continuous block's last)

    @property
    def duration_s(self) -> float:
        """The whole step: an alternating cycle fits channel 1's contraction in its rest."""
        return self.spec.on_s + self.spec.off_s


def _windows(on_s: float, pattern: str, channels: int) -> tuple[Window | None, ...]:
    if pattern == "alternating" and channels == 2:
        # channel 1's contraction starts as channel 0's ends (validated: off_s >= on_s)
        return ((0.0, on_s), (on_s, 2 * on_s))
    return tuple((0.0, on_s) for _ in range(channels))


def block_steps(block: Block, block_index: int, channels: int) -> Iterator[Step]:
    """The steps of one block, with the block's values as they are now."""
    if block.continuous:
        segments = [spec for spec, repeat in continuous_segments(block, channels)
                    for _ in range(repeat)]
        last = len(segments) - 1
        for i, spec in enumerate(segments):
            yield Step(block_index=block_index, cycle_index=0, cycles_total=1, spec=spec,
                       windows=tuple((0.0, spec.on_s) for _ in range(channels)),
                       starts_contraction=i == 0, ends_contraction=i == last)
        return
    spec = CycleSpec.from_block(block, channels)
    windows = _windows(block.on_s, block.pattern, channels)
    for i in range(block.cycles):
        yield Step(block_index=block_index, cycle_index=i, cycles_total=block.cycles, spec=spec,
                   windows=windows, starts_contraction=True, ends_contraction=True)
