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
import contextlib
import os
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path

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

    def __init__(self, initial: dict[str, float], *, max_rows: int | None = None) -> None:
        """`max_rows` bounds each signal's history (the oldest half is dropped when it is
        reached): for a board that runs for hours in the app, where nobody writes the trace.
        A trace that is written (tests, `session run`, `homeapp sim`) keeps every row."""
        self.index = {name: i for i, name in enumerate(SIGNALS)}
        self.times = [array("q", [0]) for _ in SIGNALS]
        self.values = [array("d", [float(initial[name])]) for name in SIGNALS]
        self.max_rows = max_rows

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
        if self.max_rows is not None and len(times) > self.max_rows:
            del times[: len(times) // 2]
            del values[: len(values) // 2]

    def last(self, sig: int) -> float:
        return self.values[sig][-1]

    def _lines(self) -> tuple[list[int], list[str]]:
        """Sort keys (t_us * 16 + signal index) and the CSV lines, per signal in turn."""
        keys: list[int] = []
        lines: list[str] = []
        for i, name in enumerate(SIGNALS):
            texts: dict[float, str] = {}
            for v in set(self.values[i]):
                texts[v] = f",{name},{format_value(name, v)}\n"
            ts = self.times[i].tolist()
            keys.extend(t * 16 + i for t in ts)
            lines.extend(f"{t}{texts[v]}" for t, v in zip(ts, self.values[i].tolist()))
        return keys, lines

    def write(self, path: str | Path) -> None:
        """Write the whole trace, atomically: rows go to a temporary file beside `path`,
        which replaces `path` only once complete. A kill mid-write leaves the earlier file
        (or none), never a trace cut mid-row with a leg left high."""
        path = Path(path)
        keys, lines = self._lines()
        order = sorted(range(len(keys)), key=keys.__getitem__)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "w", newline="") as f:
                f.write(HEADER + "\n")
                for k in range(0, len(order), 65536):
                    f.write("".join([lines[j] for j in order[k:k + 65536]]))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def to_trace(self) -> "Trace":
        times = {name: self.times[i].tolist() for i, name in enumerate(SIGNALS)}
        values = {name: (self.values[i].tolist() if name in ANALOG
                         else [int(v) for v in self.values[i]])
                  for i, name in enumerate(SIGNALS)}
        return Trace(times, values)


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
    """A board trace in memory: per-signal change times and values."""

    def __init__(self, times: dict[str, list[int]], values: dict[str, list[float]]) -> None:
        self._t = times
        self._v = values

    @classmethod
    def read(cls, path: str | Path) -> "Trace":
        with open(path, newline="") as f:
            text = f.read()
        head, _, body = text.partition("\n")
        if head.rstrip("\r") != HEADER:
            raise ValueError(f"{path}: not a board trace (header {head!r})")
        fields = body.replace("\r", "").replace("\n", ",").split(",")
        if fields and fields[-1] == "":
            fields.pop()
        if len(fields) % 3:
            raise ValueError(f"{path}: a row does not have three fields")
        raw_t: dict[str, list[str]] = {name: [] for name in SIGNALS}
        raw_v: dict[str, list[str]] = {name: [] for name in SIGNALS}
        for t, name, v in zip(fields[0::3], fields[1::3], fields[2::3]):
            if name not in raw_t:
                raw_t[name], raw_v[name] = [], []
            raw_t[name].append(t)
            raw_v[name].append(v)
        times = {name: list(map(int, ts)) for name, ts in raw_t.items()}
        values = {name: list(map(float if name in ANALOG else int, vs))
                  for name, vs in raw_v.items()}
        return cls(times, values)

    @property
    def names(self) -> list[str]:
        return list(self._t)

    def signal(self, name: str) -> list[tuple[int, float]]:
        """Every (t_us, value) row of `name`, in time order."""
        return list(zip(self._t[name], self._v[name]))

    def value_at(self, name: str, t_us: int) -> float:
        """The value of `name` in effect at `t_us` (after every change at or before it)."""
        i = bisect.bisect_right(self._t[name], t_us) - 1
        if i < 0:
            raise ValueError(f"{name} has no value before t_us={t_us}")
        return self._v[name][i]

    def end_us(self) -> int:
        return max((ts[-1] for ts in self._t.values() if ts), default=0)

    def pulses(self, channel: int) -> list[Pulse]:
        """The channel's pulses: each rising edge of leg A, with the leg-B phase that
        follows it (B rising before the next A rises); a B phase with no A before it is a
        pulse of its own with `a_us = 0`."""
        a = _intervals(self._t[f"ch{channel}.a"], self._v[f"ch{channel}.a"])
        b = _intervals(self._t[f"ch{channel}.b"], self._v[f"ch{channel}.b"])
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
        keys: list[int] = []
        vals: list[float] = []
        for j, n in enumerate(names):
            keys.extend(t * 4 + j for t in self._t[n])
            vals.extend(self._v[n])
        state = [0.0, 0.0, 0.0, 0.0]
        out: list[tuple[int, int, float]] = []
        cur_val, cur_t0 = 0.0, 0
        order = sorted(range(len(keys)), key=keys.__getitem__)
        n_ev = len(order)
        for k, idx in enumerate(order):
            key = keys[idx]
            state[key & 3] = vals[idx]
            t = key >> 2
            if k + 1 < n_ev and keys[order[k + 1]] >> 2 == t:
                continue  # settle every change at this microsecond first
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


def _intervals(times: list[int], values: list[float]) -> list[tuple[int, int]]:
    """[rise, fall) intervals of a 0/1 signal; one still high at the end of the trace has
    not finished and is left out."""
    out: list[tuple[int, int]] = []
    high_at: int | None = None
    for t, v in zip(times, values):
        if v and high_at is None:
            high_at = t
        elif not v and high_at is not None:
            out.append((high_at, t))
            high_at = None
    return out
