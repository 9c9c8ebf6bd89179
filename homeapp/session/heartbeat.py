"""The loop's tick and the heartbeat: when the loop must next tick, and how long the
board has gone without a heartbeat edge (a near miss, or long enough for the board's
watchdog to have cut the output)."""
from __future__ import annotations

from dataclasses import dataclass

#: The loop's tick: heartbeat edge, e-stop and contact polls, intensity ramp steps.
#: 100 ms keeps the watchdog (250 ms) fed with margin and reacts within a tenth of a second.
TICK_US = 100_000

#: A heartbeat gap this long is logged as a near miss of the board's watchdog (250 ms).
HEARTBEAT_LAPSE_US = 200_000


@dataclass(frozen=True)
class Lapse:
    """The gap since the last heartbeat, as a tick found it."""

    gap_us: int
    near_miss: bool   # long enough to log
    cut: bool         # as long as the board's watchdog: it may have cut the output

    @property
    def gap_ms(self) -> int:
        """The gap in whole ms, as the log records it."""
        return round(self.gap_us / 1000)


class Heartbeat:
    """The tick schedule and the time of the last heartbeat edge (clock µs)."""

    def __init__(self, *, watchdog_ms: int, tick_us: int = TICK_US,
                 lapse_us: int = HEARTBEAT_LAPSE_US) -> None:
        self.watchdog_us = int(watchdog_ms) * 1000
        self.tick_us = tick_us
        self.lapse_us = lapse_us
        self.next_tick_us = 0
        self.last_beat_us = 0

    def restart(self, now_us: int) -> None:
        """Tick at once (the session starts or resumes)."""
        self.next_tick_us = now_us

    def due(self, now_us: int) -> bool:
        """The loop must tick at clock µs `now_us`."""
        return now_us >= self.next_tick_us

    def tick(self, now_us: int) -> Lapse:
        """A tick at clock µs `now_us`: the next is one period on (missed ticks are skipped
        rather than burst: a late loop is logged, not hidden). Returns the lapse."""
        self.next_tick_us = max(self.next_tick_us + self.tick_us, now_us)
        gap_us = now_us - self.last_beat_us
        return Lapse(gap_us, gap_us >= self.lapse_us, gap_us >= self.watchdog_us)

    def beat(self, now_us: int) -> None:
        """A heartbeat edge went to the board at clock µs `now_us`."""
        self.last_beat_us = now_us
