"""pigpio's waveform machinery, re-implemented: the wave being built, created waves and
their DMA control-block accounting, chain scripts, and the output DMA engine that plays
them as an exact edge timeline in absolute microseconds.

Faithful to pigpio.c (v79) where it matters to a caller:
- `wave_add_generic` merges new pulses into the wave being built in time order (pulses due
  at the same microsecond are OR-ed into one entry); > 12,000 merged pulses is an error.
- `wave_create` allocates control blocks bottom-up (`hw.pigpio_limits.wave_cbs`); deleting
  the top wave (and any deleted ones below it) returns its resources, a deleted slot is
  reused only by a wave of exactly the same cost.
- A wave started with `wave_send_*` begins with a 20 µs delay; waves inside a chain do not;
  a chain begins with its own 20 µs delay.
- Sync modes queue the new wave at the end of whatever is playing: a one-shot wave or a
  finite chain plays to its end, a repeating wave or a loop-forever chain finishes its
  current repetition; when nothing plays the wave starts at once (after its 20 µs delay).
- A chain kills whatever is playing before it parses its script, so even a chain refused
  with an error has stopped the output.
- Loop count 0 skips the loop body, except that pigpio still executes the body's first
  control block: if that is a delay, the delay still happens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from hw import pigpio_limits as L

Pulse = tuple[int, int, int]  # (gpio_on mask, gpio_off mask, delay_us)


class PigpioError(Exception):
    """A pigpio error code to answer a request with."""

    def __init__(self, code: int) -> None:
        super().__init__(L.ERROR_NAMES.get(code, str(code)))
        self.code = code


def merge_pulses(new: Sequence[Pulse], existing: Sequence[Pulse]) -> list[Pulse]:
    """pigpio's time-ordered merge of `new` pulses into the `existing` wave being built.

    Both lists start at time 0. An entry's delay runs to the next entry; when the two
    streams are due at the same microsecond their masks are OR-ed into one entry. The
    merged wave lasts as long as the longer input. pigpio refuses a result that fills its
    12,000-entry buffer (so 11,999 merged pulses is the most that succeeds):
    PigpioError(PI_TOO_MANY_PULSES)."""
    if not existing:
        # Merging into an empty wave is the identity (each entry keeps its own delay):
        # the common case, since a driver adds each wave in one call.
        if len(new) >= L.PI_WAVE_MAX_PULSES:
            raise PigpioError(L.PI_TOO_MANY_PULSES)
        return list(new) if isinstance(new[0], tuple) else [tuple(p) for p in new]
    inf = float("inf")
    out: list[list[int]] = []
    i1 = i2 = 0
    n1, n2 = len(new), len(existing)
    t1: float = 0 if n1 else inf
    t2: float = 0 if n2 else inf
    t_now = 0
    t_max = 0
    while (i1 < n1 or i2 < n2) and len(out) < L.PI_WAVE_MAX_PULSES:
        if t1 < t2:
            if t_now < t1:  # stretch the previous entry's delay up to this one
                out[-1][2] += int(t1) - t_now
                t_now = int(t1)
            on, off, d = new[i1]
            t1 = t_now + d
            i1 += 1
        elif t2 < t1:
            if t_now < t2:
                out[-1][2] += int(t2) - t_now
                t_now = int(t2)
            on, off, d = existing[i2]
            t2 = t_now + d
            i2 += 1
        else:
            if t_now < t1:
                out[-1][2] += int(t1) - t_now
                t_now = int(t1)
            on = new[i1][0] | existing[i2][0]
            off = new[i1][1] | existing[i2][1]
            t1 = t_now + new[i1][2]
            t2 = t_now + existing[i2][2]
            i1 += 1
            i2 += 1
        t_max = max(t_max, *(t for t in (t1, t2) if t != inf))
        t_next = t1 if t1 <= t2 else t2
        out.append([on, off, int(t_next) - t_now])
        t_now = int(t_next)
        if i1 >= n1:
            t1 = inf
        if i2 >= n2:
            t2 = inf
    if t_now < t_max:
        out[-1][2] += t_max - t_now
    if len(out) >= L.PI_WAVE_MAX_PULSES:
        raise PigpioError(L.PI_TOO_MANY_PULSES)
    return [(a, b, c) for a, b, c in out]


@dataclass(frozen=True)
class Wave:
    """A created wave: its merged pulses, flattened into the edge offsets DMA will play.

    `times_us[k]` is the offset from the wave's first pulse of the k-th entry that sets or
    clears anything, with masks `ons[k]`, `offs[k]`; `duration_us` includes the last delay.
    """

    wave_id: int
    pulses: tuple[Pulse, ...]
    times_us: tuple[int, ...]
    ons: tuple[int, ...]
    offs: tuple[int, ...]
    duration_us: int
    cbs: int
    ools: int

    @classmethod
    def build(cls, wave_id: int, pulses: Sequence[Pulse], cbs: int, ools: int) -> "Wave":
        times, ons, offs = [], [], []
        t = 0
        for on, off, delay in pulses:
            if on or off:
                times.append(t)
                ons.append(on)
                offs.append(off)
            t += delay
        return cls(wave_id, tuple(pulses), tuple(times), tuple(ons), tuple(offs), t, cbs, ools)


@dataclass
class _Slot:
    bot_cb: int
    num_cb: int
    bot_ool: int
    num_ool: int
    wave: Wave | None  # None once deleted


class WaveTable:
    """The wave being built plus every created wave, with pigpio's resource accounting."""

    def __init__(self) -> None:
        self.building: list[Pulse] = []
        self.slots: list[_Slot] = []
        self._bot_cb = 0
        self._bot_ool = 0
        self.stats_micros = self.stats_pulses = self.stats_cbs = 0
        self.high_micros = self.high_pulses = self.high_cbs = 0

    # -- building -----------------------------------------------------------------------
    def clear(self) -> None:
        """WVCLR: forget the wave being built and every created wave."""
        self.building = []
        self.slots = []
        self._bot_cb = self._bot_ool = 0
        self.stats_micros = self.stats_pulses = self.stats_cbs = 0

    def new(self) -> None:
        """WVNEW: start a new wave (created waves stay)."""
        self.building = []
        self.stats_micros = self.stats_pulses = self.stats_cbs = 0

    def add_generic(self, pulses: Sequence[Pulse]) -> int:
        """WVAG: merge `pulses` into the wave being built; returns its pulse count."""
        if len(pulses) > L.PI_WAVE_MAX_PULSES:
            raise PigpioError(L.PI_TOO_MANY_PULSES)
        merged = merge_pulses(pulses, self.building)
        self.building = merged
        self.stats_micros = sum(p[2] for p in merged)
        self.stats_pulses = len(merged)
        self.stats_cbs = L.wave_cbs(merged) - 1  # pigpio's running count omits the start CB
        self.high_micros = max(self.high_micros, self.stats_micros)
        self.high_pulses = max(self.high_pulses, self.stats_pulses)
        self.high_cbs = max(self.high_cbs, self.stats_cbs)
        return len(merged)

    # -- creating -----------------------------------------------------------------------
    def create(self, pad_pct: tuple[int, int] | None = None) -> int:
        """WVCRE (or WVCAP with `pad_pct` = (percent CBs, percent OOLs)): a new wave id."""
        if pad_pct is not None and any(not 0 <= p <= 100 for p in pad_pct):
            raise PigpioError(L.PI_BAD_PARAM)
        if not self.building:
            raise PigpioError(L.PI_EMPTY_WAVEFORM)
        num_cb = self.stats_cbs + 1  # counted when the pulses were added (same list)
        num_ool = L.wave_ools(self.building)
        if pad_pct is not None:
            cb_pad = L.WAVE_CB_BUDGET * pad_pct[0] // 100
            ool_pad = L.WAVE_OOL_BUDGET * pad_pct[1] // 100
            if num_cb > cb_pad:
                raise PigpioError(L.PI_TOO_MANY_CBS)
            if num_ool > ool_pad:
                raise PigpioError(L.PI_TOO_MANY_OOL)
            num_cb, num_ool = cb_pad, ool_pad
        wid = next((i for i, s in enumerate(self.slots)
                    if s.wave is None and s.num_cb == num_cb and s.num_ool == num_ool), -1)
        if wid < 0:
            if num_cb + self._bot_cb > L.WAVE_CB_BUDGET:
                raise PigpioError(L.PI_TOO_MANY_CBS)
            if num_ool + self._bot_ool > L.WAVE_OOL_BUDGET:
                raise PigpioError(L.PI_TOO_MANY_OOL)
            # pigpio means to refuse a 251st wave but its check never fires (it would
            # overrun its table); the simulator refuses it with the intended code.
            if len(self.slots) >= L.PI_MAX_WAVES:
                raise PigpioError(L.PI_NO_WAVEFORM_ID)
            wid = len(self.slots)
            self.slots.append(_Slot(self._bot_cb, num_cb, self._bot_ool, num_ool, None))
            self._bot_cb += num_cb
            self._bot_ool += num_ool
        self.slots[wid].wave = Wave.build(wid, self.building, num_cb, num_ool)
        self.building = []
        return wid

    def delete(self, wave_id: int) -> None:
        """WVDEL: free a wave; its resources return only from the top down."""
        self.get(wave_id)
        self.slots[wave_id].wave = None
        if wave_id == len(self.slots) - 1:
            while wave_id > 0 and self.slots[wave_id - 1].wave is None:
                wave_id -= 1
            self._bot_cb = self.slots[wave_id].bot_cb
            self._bot_ool = self.slots[wave_id].bot_ool
            del self.slots[wave_id:]

    def get(self, wave_id: int) -> Wave:
        if wave_id >= len(self.slots) or self.slots[wave_id].wave is None:
            raise PigpioError(L.PI_BAD_WAVE_ID)
        return self.slots[wave_id].wave  # type: ignore[return-value]


# --- chains ------------------------------------------------------------------------------

@dataclass
class Loop:
    """A chain loop: `body` played `count` times (None: forever)."""

    body: list
    count: int | None


@dataclass
class Delay:
    us: int


def parse_chain(script: bytes, waves: WaveTable) -> list:
    """Check a `wave_chain` script exactly as pigpio does (same errors, same order, same
    control-block budget) and return it as a tree of Wave / Delay / Loop items."""
    cb = 1  # the chain's start delay
    counters = 0
    root: list = []
    stack: list[tuple[int, list]] = []  # (cb at loop start, list the loop belongs to)
    cur = root

    def need(n: int) -> None:  # pigpio checks each CB index it touches against 600
        if n >= L.PI_CHAIN_MAX_CBS:
            raise PigpioError(L.PI_CHAIN_TOO_BIG)

    i, n = 0, len(script)
    while i < n:
        wid = script[i]
        if wid == 255:
            if i + 2 > n:
                raise PigpioError(L.PI_BAD_CHAIN_CMD)
            cmd = script[i + 1]
            if cmd == 0:  # loop start
                if len(stack) >= L.PI_CHAIN_MAX_NESTING:
                    raise PigpioError(L.PI_CHAIN_NESTING)
                stack.append((cb, cur))
                cur = []
                i += 2
            elif cmd == 1:  # loop end, count x + 256 y
                if counters >= L.PI_CHAIN_MAX_COUNTERS:
                    raise PigpioError(L.PI_CHAIN_COUNTER)
                if i + 4 > n:
                    raise PigpioError(L.PI_BAD_CHAIN_CMD)
                if not stack:
                    raise PigpioError(L.PI_BAD_CHAIN_LOOP)
                loop_cb, outer = stack.pop()
                if loop_cb == cb:
                    raise PigpioError(L.PI_BAD_CHAIN_LOOP)
                count = script[i + 2] | (script[i + 3] << 8)
                i += 4
                if count == 0:
                    # pigpio re-points the body's first CB past the loop: that CB still runs
                    first = _first_item(cur)
                    if isinstance(first, Delay):
                        outer.append(Delay(first.us))
                elif count == 1:
                    outer.extend(cur)
                else:
                    need(cb)
                    cb += 1
                    need(cb)
                    outer.append(Loop(cur, count))
                    counters += 1
                cur = outer
            elif cmd == 2:  # delay x + 256 y µs
                if i + 4 > n:
                    raise PigpioError(L.PI_BAD_CHAIN_CMD)
                us = script[i + 2] | (script[i + 3] << 8)
                i += 4
                if us:
                    for _ in range(L.delay_cbs(us)):
                        need(cb)
                        cb += 1
                    cur.append(Delay(us))
            elif cmd == 3:  # loop forever
                i += 2
                if not stack:
                    raise PigpioError(L.PI_BAD_CHAIN_LOOP)
                loop_cb, outer = stack.pop()
                if loop_cb == cb:
                    raise PigpioError(L.PI_BAD_CHAIN_LOOP)
                need(cb)
                cb += 1
                if i < n:
                    raise PigpioError(L.PI_BAD_FOREVER)
                outer.append(Loop(cur, None))
                cur = outer
            else:
                raise PigpioError(L.PI_BAD_CHAIN_CMD)
        else:
            wave = waves.get(wid)
            need(cb)
            cb += 1
            need(cb)
            cur.append(wave)
            i += 1
    need(cb)  # the closing CB
    # loops never closed play once, in place (pigpio ignores an unmatched loop start)
    while stack:
        _, outer = stack.pop()
        outer.extend(cur)
        cur = outer
    return root


def _first_item(items: list):
    """The item that owns a body's first control block (None: none of them has one)."""
    for it in items:
        if isinstance(it, Loop):
            inner = _first_item(it.body)
            if inner is not None:
                return inner
        else:
            return it
    return None


# --- the output DMA engine ---------------------------------------------------------------

Segment = tuple[int, "Wave | None", int]  # (start_us, wave or None for a delay, end_us)


class _Item:
    """One thing the DMA engine plays: a wave (once or repeating) or a chain."""

    def __init__(self, kind: str, wave: Wave | None = None, tree: list | None = None) -> None:
        self.kind = kind  # "once", "repeat", "chain"
        self.wave = wave
        self.tree = tree
        self.followed = False  # a sync send queued something after this item

    def segments(self, t_us: int) -> Iterator[Segment]:
        if self.kind == "once":
            yield (t_us, self.wave, t_us + self.wave.duration_us)
        elif self.kind == "repeat":
            w = self.wave
            while True:
                yield (t_us, w, t_us + w.duration_us)
                t_us += w.duration_us
                if self.followed:
                    return
                if w.duration_us == 0:
                    return  # a zero-length repeating wave would spin forever in no time
        else:
            yield from self._play(self.tree, t_us)

    def _play(self, items: list, t_us: int) -> Iterator[Segment]:
        for it in items:
            if isinstance(it, Wave):
                yield (t_us, it, t_us + it.duration_us)
                t_us += it.duration_us
            elif isinstance(it, Delay):
                yield (t_us, None, t_us + it.us)
                t_us += it.us
            elif it.count is None:
                while True:
                    t_before = t_us
                    for seg in self._play(it.body, t_us):
                        yield seg
                        t_us = seg[2]
                    if self.followed or t_us == t_before:
                        return
            else:
                for _ in range(it.count):
                    for seg in self._play(it.body, t_us):
                        yield seg
                        t_us = seg[2]
        return


class DmaEngine:
    """What pigpio's output DMA channel is playing, as a lazy stream of segments.

    `next_segment()` hands the board the next wave instance (absolute start) or delay;
    the board asks for it only once the current one has finished in simulated time, so a
    sync send made before a repetition boundary is seen at that boundary."""

    def __init__(self) -> None:
        self._queue: list[_Item] = []
        self._gen: Iterator[Segment] | None = None
        self.end_us = 0          # end of the last segment handed out
        self.current: Segment | None = None

    @property
    def active(self) -> bool:
        return self._gen is not None or bool(self._queue)

    def kill(self) -> None:
        """Stop at once (initKillDMA): nothing after now plays; the pins stay as they are."""
        self._queue = []
        self._gen = None
        self.current = None

    def start(self, item: _Item, t_us: int) -> None:
        self.kill()
        self._queue = [item]
        self._gen = item.segments(t_us + L.WAVE_START_DELAY_US)
        self.end_us = t_us + L.WAVE_START_DELAY_US

    def append(self, item: _Item) -> None:
        """Sync mode with something playing: `item` follows the last queued item."""
        self._queue[-1].followed = True
        self._queue.append(item)

    def next_segment(self) -> Segment | None:
        """The next segment to play, or None when the DMA engine has stopped."""
        while self._gen is not None:
            seg = next(self._gen, None)
            if seg is not None:
                self.current = seg
                self.end_us = seg[2]
                return seg
            self._queue.pop(0)
            if self._queue:
                self._gen = self._queue[0].segments(self.end_us)
            else:
                self._gen = None
        self.current = None
        return None


def once(wave: Wave) -> _Item:
    return _Item("once", wave)


def repeat(wave: Wave) -> _Item:
    return _Item("repeat", wave)


def chain(tree: list) -> _Item:
    return _Item("chain", tree=tree)


__all__ = ["PigpioError", "merge_pulses", "Wave", "WaveTable", "parse_chain", "DmaEngine",
           "once", "repeat", "chain", "Loop", "Delay"]
