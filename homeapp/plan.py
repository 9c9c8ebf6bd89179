"""The session plan: a prescription's blocks cut into the steps the board plays one at a time.

A step is one contraction cycle of an intermittent block (contraction then rest), or one
segment of a continuous block. A continuous block is cut by the waveform compiler
(`hw.waveform.continuous_segments`: whole pulse-grid blocks, so the pulse period runs on
across segment boundaries, the first ramping up, the last ramping down) so that even a
60-minute continuous block never has more than one segment queued on the board: a wave
outlives a crashed app, and the heartbeat watchdog covers only the rest.

Pure: no clock, no board. Times are integer µs relative to the step's start, and they
come from the waveform compiler (`contraction_windows_us`, `cycle_duration_us`): the plan
says exactly what the board plays, never its own idea of it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

from hw.waveform import CycleSpec, continuous_segments, contraction_windows_us, cycle_duration_us
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


def _step(spec: CycleSpec, **kw) -> Step:
    return Step(spec=spec, windows_us=contraction_windows_us(spec),
                duration_us=cycle_duration_us(spec), **kw)


def block_steps(block: Block, block_index: int, channels: int) -> Iterator[Step]:
    """The steps of one block, with the block's values as they are now."""
    if block.continuous:
        segments = [spec for spec, repeat in continuous_segments(block, channels)
                    for _ in range(repeat)]
        last = len(segments) - 1
        for i, spec in enumerate(segments):
            yield _step(spec, block_index=block_index, cycle_index=0, cycles_total=1,
                        starts_contraction=i == 0, ends_contraction=i == last)
        return
    spec = CycleSpec.from_block(block, channels)
    step = _step(spec, block_index=block_index, cycle_index=0, cycles_total=block.cycles,
                 starts_contraction=True, ends_contraction=True)
    for i in range(block.cycles):
        yield dataclasses.replace(step, cycle_index=i)
