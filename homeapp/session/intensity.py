"""Each channel's intensity: what the patient asked for (the target), what the board is
set to (the set-point), and the rate-limited ramp from one to the other.

Lowering acts at once; raising rises at `INTENSITY_RISE_MA_PER_S` (or the faster
`INTENSITY_RESTORE_MA_PER_S` for a one-touch return to the level before a pause). The
board is written through `write(channel, max_ma) -> float` (the mA it really set), so
the ramp never needs to know the board.
"""
from __future__ import annotations

from typing import Callable, Sequence

from schedules.limits import INTENSITY_RESTORE_MA_PER_S, INTENSITY_RISE_MA_PER_S

from .eventlog import seconds


class Level:
    """One channel's intensity state."""

    def __init__(self, index: int, label: str, max_ma: float) -> None:
        self.index = index
        self.label = label
        self.max_ma = max_ma            # the prescription's max_ma: nothing above it is asked of the board
        self.target_ma = 0.0            # what the patient asked for
        self.set_ma = 0.0               # what the board is set to now
        self.previous_ma = 0.0          # the level before the last pause or electrode loss
        self.rise_ma_per_s = INTENSITY_RISE_MA_PER_S
        self.session_peak_ma = 0.0      # the highest set-point of this session so far


class IntensityRamp:
    """The channels' targets and set-points; `write` sets the board."""

    def __init__(self, channels: Sequence[tuple[str, float]], *,
                 write: Callable[[int, float], float]) -> None:
        self.levels = [Level(i, label, max_ma) for i, (label, max_ma) in enumerate(channels)]
        self.write = write
        self.last_ramp_us = 0

    def __getitem__(self, channel: int) -> Level:
        """Channel `channel`'s state."""
        return self.levels[channel]

    def __len__(self) -> int:
        return len(self.levels)

    def restart(self, now_us: int) -> None:
        """The ramp's time starts now (the session starts or resumes)."""
        self.last_ramp_us = now_us

    def set_target(self, channel: int, ma: float) -> float:
        """The patient's new target (already checked against the cap); at the normal rate."""
        level = self.levels[channel]
        level.target_ma = float(ma)
        level.rise_ma_per_s = INTENSITY_RISE_MA_PER_S
        return level.target_ma

    def restore_rate(self, channel: int) -> None:
        """The current rise is a return to the earlier level: the faster rate."""
        self.levels[channel].rise_ma_per_s = INTENSITY_RESTORE_MA_PER_S

    def apply(self, channel: int, ma: float) -> float:
        """Set the board to `ma`, never above the target or the cap; returns what it set."""
        level = self.levels[channel]
        level.set_ma = float(self.write(level.index, min(ma, level.target_ma, level.max_ma)))
        level.session_peak_ma = max(level.session_peak_ma, level.set_ma)
        return level.set_ma

    def step(self, now_us: int) -> None:
        """One step of the ramp at clock µs `now_us`: each set-point below its target rises
        by the rate times the time since the last step."""
        dt_s = seconds(max(0, now_us - self.last_ramp_us))
        self.last_ramp_us = now_us
        for level in self.levels:
            if level.set_ma < level.target_ma:
                self.apply(level.index, min(level.target_ma, level.set_ma + level.rise_ma_per_s * dt_s))
            elif level.set_ma >= level.target_ma:
                level.rise_ma_per_s = INTENSITY_RISE_MA_PER_S

    def zero_all(self) -> None:
        """Targets and set-points to zero (the board is already stopped), remembering the
        level each channel had for a one-touch return."""
        for level in self.levels:
            if level.target_ma > 0 or level.set_ma > 0:
                level.previous_ma = max(level.target_ma, level.set_ma)
            level.target_ma = level.set_ma = 0.0
