"""The board trace of contract.md: what the stimulation board saw, one row per change.

CSV header `t_us,signal,value`; rows sorted by time, ties in the fixed order of `SIGNALS`;
every signal has a row at t_us = 0; values are 0/1 integers, except `chN.ma` (mA, at most 3
decimals, no trailing zeros). At most one row per signal and microsecond: when a signal
changes several times within one microsecond the trace keeps what it settled to.

`TraceRecorder` is the simulator's compact write side; `Trace` is the reader used by the
driver, engine and safety tests (`Trace.read(path)` or `board.trace()`).
"""
from __future__ import annotations

import bisect
import csv
import heapq
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

#: Every signal, in the order that breaks ties between rows at the same microsecond.
SIGNALS: tuple[str, ...] = ("ch0.a", "ch0.b", "ch1.a", "ch1.b", "ch0.ma", "ch1.ma",
                            "enable", "estop", "heartbeat", "lead.ch0", "lead.ch1")
ANALOG = frozenset({"ch0.ma", "ch1.ma"})
HEADER = "t_us,signal,value"


def format_value(name: str, value: float) -> str:
    """The CSV text of a value: integers for lines, up to 3 decimals for mA."""
    if name in ANALOG:
        text = f"{round(value, 3):.3f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(int(value))


class TraceRecorder:
    """Per-signal arrays of (t_us, value); a change within the same microsecond replaces
    the previous row, and a change back to the earlier value removes it."""

    def __init__(self, initial: dict[str, float]) -> None:
        self.index = {name: i for i, name in enumerate(SIGNALS)}
        self.times = [array("q", [0]) for _ in SIGNALS]
        self.values = [array("d", [float(initial[name])]) for name in SIGNALS]

    def record(self, sig: int, t_us: int, value: float) -> None:
        times, values = self.times[sig], self.values[sig]
        if values[-1] == value:
            return
        if times[-1] == t_us:
            if len(values) >= 2 and values[-2] == value:
                times.pop()
                values.pop()
            else:
                values[-1] = value
            return
        times.append(t_us)
        values.append(value)

    def last(self, sig: int) -> float:
        return self.values[sig][-1]

    def rows(self) -> Iterator[tuple[int, int, str]]:
        """(t_us, signal index, text value) in trace order."""
        def one(i: int) -> Iterator[tuple[int, int, str]]:
            name = SIGNALS[i]
            cache: dict[float, str] = {}
            for t, v in zip(self.times[i], self.values[i]):
                text = cache.get(v)
                if text is None:
                    text = cache[v] = format_value(name, v)
                yield (t, i, text)
        return heapq.merge(*(one(i) for i in range(len(SIGNALS))))

    def write(self, path: str | Path) -> None:
        with open(path, "w", newline="") as f:
            f.write(HEADER + "\n")
            buf: list[str] = []
            for t, i, text in self.rows():
                buf.append(f"{t},{SIGNALS[i]},{text}\n")
                if len(buf) >= 65536:
                    f.write("".join(buf))
                    buf.clear()
            f.write("".join(buf))

    def to_trace(self) -> "Trace":
        series: dict[str, list[tuple[int, float]]] = {}
        for i, name in enumerate(SIGNALS):
            conv = float if name in ANALOG else int
            series[name] = [(t, conv(v)) for t, v in zip(self.times[i], self.values[i])]
        return Trace(series)


@dataclass(frozen=True)
class Pulse:
    """One stimulation pulse on a channel, as the legs show it.

    `start_us` is when leg A rose (or leg B, for a pulse with no first phase); `a_us` and
    `b_us` the widths of the two phases, `gap_us` from A falling to B rising (0 when a
    phase is missing); `ma` the set-point and `enabled` the effective enable at the start."""

    start_us: int
    a_us: int
    gap_us: int
    b_us: int
    ma: float
    enabled: bool

    @property
    def end_us(self) -> int:
        return self.start_us + self.a_us + self.gap_us + self.b_us


class Trace:
    """A board trace in memory: per-signal change lists."""

    def __init__(self, series: dict[str, list[tuple[int, float]]]) -> None:
        self._series = series
        self._times = {k: [t for t, _ in v] for k, v in series.items()}

    @classmethod
    def read(cls, path: str | Path) -> "Trace":
        series: dict[str, list[tuple[int, float]]] = {name: [] for name in SIGNALS}
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != HEADER.split(","):
                raise ValueError(f"{path}: not a board trace (header {header!r})")
            for t, name, value in reader:
                conv = float if name in ANALOG else int
                series.setdefault(name, []).append((int(t), conv(value)))
        return cls(series)

    @property
    def names(self) -> list[str]:
        return list(self._series)

    def signal(self, name: str) -> list[tuple[int, float]]:
        """Every (t_us, value) row of `name`, in time order."""
        return list(self._series[name])

    def value_at(self, name: str, t_us: int) -> float:
        """The value of `name` in effect at `t_us` (after every change at or before it)."""
        i = bisect.bisect_right(self._times[name], t_us) - 1
        if i < 0:
            raise ValueError(f"{name} has no value before t_us={t_us}")
        return self._series[name][i][1]

    def end_us(self) -> int:
        return max((v[-1][0] for v in self._series.values() if v), default=0)

    def pulses(self, channel: int) -> list[Pulse]:
        """The channel's pulses: each rising edge of leg A, with the leg-B phase that
        follows it (B rising before the next A rises); a B phase with no A before it is a
        pulse of its own with `a_us = 0`."""
        a = _intervals(self._series[f"ch{channel}.a"])
        b = _intervals(self._series[f"ch{channel}.b"])
        out: list[Pulse] = []
        ib = 0
        for k, (a0, a1) in enumerate(a):
            next_a = a[k + 1][0] if k + 1 < len(a) else None
            while ib < len(b) and b[ib][0] < a0:  # a B phase before this A: on its own
                out.append(self._pulse(channel, b[ib][0], 0, 0, b[ib][1] - b[ib][0]))
                ib += 1
            if ib < len(b) and (next_a is None or b[ib][0] < next_a):
                b0, b1 = b[ib]
                ib += 1
                out.append(self._pulse(channel, a0, a1 - a0, b0 - a1, b1 - b0))
            else:
                out.append(self._pulse(channel, a0, a1 - a0, 0, 0))
        for b0, b1 in b[ib:]:
            out.append(self._pulse(channel, b0, 0, 0, b1 - b0))
        return out

    def _pulse(self, channel: int, start: int, a_us: int, gap_us: int, b_us: int) -> Pulse:
        return Pulse(start, a_us, gap_us, b_us, self.value_at(f"ch{channel}.ma", start),
                     bool(self.value_at("enable", start)))

    def current_segments(self, channel: int) -> list[tuple[int, int, float]]:
        """Intervals [t0_us, t1_us) where enable * ma * (a - b) is not zero, with that
        signed current in mA; adjacent intervals of equal current are merged. An interval
        still open at the end of the trace ends at the trace's last row."""
        names = (f"ch{channel}.a", f"ch{channel}.b", f"ch{channel}.ma", "enable")
        def tagged(j: int, rows: list[tuple[int, float]]) -> Iterator[tuple[int, int, float]]:
            return ((t, j, v) for t, v in rows)

        events = heapq.merge(*(tagged(j, self._series[n]) for j, n in enumerate(names)))
        state = [0.0, 0.0, 0.0, 0.0]
        out: list[tuple[int, int, float]] = []
        cur_val, cur_t0 = 0.0, 0
        pending = list(events)
        k = 0
        while k < len(pending):
            t = pending[k][0]
            while k < len(pending) and pending[k][0] == t:
                _, j, v = pending[k]
                state[j] = v
                k += 1
            val = state[3] * state[2] * (state[0] - state[1])
            if val != cur_val:
                if cur_val != 0 and t > cur_t0:
                    out.append((cur_t0, t, cur_val))
                cur_val, cur_t0 = val, t
        if cur_val != 0:
            end = self.end_us()
            if end > cur_t0:
                out.append((cur_t0, end, cur_val))
        return out


def _intervals(rows: Iterable[tuple[int, float]]) -> list[tuple[int, int]]:
    """[rise, fall) intervals of a 0/1 signal; one still high at the end of the trace has
    not finished and is left out."""
    out: list[tuple[int, int]] = []
    high_at: int | None = None
    for t, v in rows:
        if v and high_at is None:
            high_at = t
        elif not v and high_at is not None:
            out.append((high_at, t))
            high_at = None
    return out
