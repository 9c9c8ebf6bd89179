"""The session's log and its clock: where session time is read, and what is written.

Session time is integer µs from the session's start (`t0_us`, a clock time); seconds
appear only in what is written out (the log's `t`, a contraction's start and end).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from homeapp.ports import Clock, Store

US = 1_000_000


def seconds(t_us: int) -> float:
    """µs as the seconds the log and the UI show."""
    return t_us / US


class SessionLog:
    """Reads the clock (the engine's one place) and writes the session's log.

    Before `open()` there is no session: events are dropped (nothing to attach them to)."""

    def __init__(self, *, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.session_id: str | None = None
        self.t0_us = 0  # clock µs of the session's t = 0

    def now_us(self) -> int:
        """The clock's now in whole µs."""
        return round(self.clock.now() * US)

    def session_us(self, clock_us: int) -> int:
        """A clock time as session time."""
        return clock_us - self.t0_us

    def t(self) -> float:
        """Session time now, in seconds, as the log records it."""
        return seconds(self.now_us() - self.t0_us)

    def open(self, *, session_id: str, t0_us: int) -> None:
        """The session has begun at clock time `t0_us`."""
        self.session_id = session_id
        self.t0_us = t0_us

    def event(self, kind: str, t: float | None = None, **detail: Any) -> None:
        """One event (`kind`: an `EventKind` or its string) at session time `t` (now)."""
        if self.session_id is None:
            return
        self.store.add_event(self.session_id, t=self.t() if t is None else t, kind=str(kind),
                             detail=detail)

    def contraction(self, *, channel: int, index: int, start_us: int, end_us: int,
                    peak_ma: float, completed: bool) -> None:
        """One contraction on one channel, times in session µs."""
        assert self.session_id is not None
        self.store.add_contraction(self.session_id, channel=channel, index=index,
                                   start_t=seconds(start_us), end_t=seconds(end_us),
                                   peak_ma=peak_ma, completed=completed)

    def close(self, *, status: str, ended_at: dt.datetime) -> None:
        """The session's end status."""
        assert self.session_id is not None
        self.store.end_session(self.session_id, status=status, ended_at=ended_at)


class ContractionTally:
    """Per channel: the contraction under way (its start and peak) and how many ended
    whole. Logs each contraction as it ends."""

    def __init__(self, log: SessionLog, channels: int) -> None:
        self.log = log
        self.start_us: list[int | None] = [None] * channels  # session µs
        self.peak_ma = [0.0] * channels
        self.done = [0] * channels

    def is_open(self, channel: int) -> bool:
        """A contraction is under way (begun, not yet logged)."""
        return self.start_us[channel] is not None

    def begin(self, channel: int, start_us: int, set_ma: float) -> None:
        """A contraction begins at session µs `start_us`, at the current set-point."""
        self.start_us[channel] = start_us
        self.peak_ma[channel] = set_ma

    def saw(self, channel: int, set_ma: float) -> None:
        """The set-point changed during the contraction."""
        self.peak_ma[channel] = max(self.peak_ma[channel], set_ma)

    def end(self, channel: int, end_us: int, *, completed: bool) -> None:
        """The contraction ends (`completed` False: cut short); logged. Nothing open: no-op."""
        start_us = self.start_us[channel]
        if start_us is None:
            return
        self.log.contraction(channel=channel, index=self.done[channel] if completed else -1,
                             start_us=start_us, end_us=end_us,
                             peak_ma=round(self.peak_ma[channel], 3), completed=completed)
        if completed:
            self.done[channel] += 1
        self.start_us[channel] = None
        self.peak_ma[channel] = 0.0
