"""The waveform compiler: one contraction cycle of a block becomes pigpio waves and a chain.

Pure: no pigpio, no I/O. `compile_cycle(spec, pins)` returns a `CompiledCycle` holding the
pulse lists of every distinct wave (what `wave_add_generic` takes, as `(gpio_on, gpio_off,
delay_us)` tuples), the chain script as tokens (turned into `wave_chain` bytes once the
driver knows the real wave ids), the exact duration and the planned pulses, plus the
pigpio resources it needs, all checked against `hw.pigpio_limits`.

Timing (exact, no drift)
------------------------
Let P = 1e6 / hz µs. Pulse k of a contraction starts at `t_k = floor(k*P + 1/2)` µs after
the contraction's first pulse, so every pulse is within 0.5 µs of the ideal grid whatever
the contraction length. When hz is a whole number P is a fraction p/q in lowest terms
(q = hz / gcd(hz, 10^6), at most 149); a *grid block* of q pulses then spans exactly
q*P whole µs and repeats identically, which is what lets a plateau be one short wave looped
in the chain without drift. Non-integer hz is exact in the same way when its q is at most
`MAX_GRID_BLOCK` (e.g. 12.5 Hz, q = 1); otherwise the period is rounded to whole µs
(P = round(1e6/hz), q = 1) — an error of less than 0.5 µs per period in frequency, never a
drift against the compiled grid. Every wave covers whole pulses: it starts at its first
pulse's start and ends at the next pulse's start, so waves in sequence tile the grid.
A contraction has `N = floor(on_s*hz)` pulses (at least 1) and lasts `S = t_N` µs; a cycle
lasts exactly `round((on_s + off_s)*1e6)` µs, the rest being chain delays.

Pulses
------
Biphasic, charge-balanced: leg A high for w µs, both low for `INTERPHASE_GAP_US`, leg B
high for w µs, then both low until the next pulse. Both phases have the same whole-µs
width w <= round(pulse_us); both legs are never high together.

Ramps (pulse-width ramps, amplitude unchanged)
---------------------------------------------
The ramp-up has `n = round(ramp_up_s*hz)` pulses; pulse k (0-based) has width
`max(1, round_half_up(W*(k+1)/(n+1)))`, W = round(pulse_us): it starts near zero and
never reaches W (the plateau's first pulse is the first at W). The ramp-down is the
mirror image (its last pulse is the narrowest). The plateau always keeps at least one
pulse: when the ramps would fill the whole contraction, the longer ramp (the ramp-down
on a tie) gives up pulses until one is left at W, so every contraction reaches the
prescribed width. A *foot* is used only when a cycle would
not fit pigpio's control-block budget otherwise (the extreme cases: two channels
alternating, long ramps near 150 Hz): the first F*q pulses of each ramp-up (last F*q of
each ramp-down), F >= 1 the smallest that fits, are held at the ramp's first width
(near zero) by one looped grid-block wave, and the linear ramp runs over the remaining
pulses. `CompiledCycle.foot_blocks` says when that happened.

Chain layout (one cycle; the same for each channel part)
--------------------------------------------------------
    [255 0  foot-up block  255 1 F 0]        only with a foot (no loop when F = 1)
    ramp-up wave(s)                           explicit pulses, <= MAX_PULSES_PER_WAVE each
    [255 0  plateau block  255 1 L]           L >= 2 whole grid blocks (nested if > 65535)
    ramp-down wave(s)                         explicit, starting with the < q (or < 2q)
                                              plateau pulses the loop did not cover
    [255 0  foot-down block  255 1 F 0]
  synchronous: that once, both channels' legs switching together (same masks OR-ed);
  alternating: channel 0's contraction, then channel 1's (starting at S);
  then the rest: [255 0  255 2 <50000 µs>  255 1 r] + 255 2 <remainder>.
The chain never loops forever: it ends with the cycle, so nothing plays more than one
cycle ahead of the host.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Sequence

from hw import pigpio_limits as L
from hw.exc import WaveformError
from schedules.limits import DEVICE_LIMITS, INTERPHASE_GAP_US, PATTERNS

Pulse = tuple[int, int, int]  # (gpio_on mask, gpio_off mask, delay_us): pigpio.pulse

#: Longest grid block (pulses) used for an exact non-integer frequency; the worst integer
#: frequency (149 Hz) needs 149.
MAX_GRID_BLOCK = 150
#: Biphasic pulses per explicit wave: 4 entries each, 12 bytes an entry on the socket,
#: keeps one `wave_add_generic` under pigpiod's 64 KiB command extension and far under
#: pigpio's 12,000 pulses per wave.
MAX_PULSES_PER_WAVE = 1200
#: Chain delays for the rest are made of this step (looped) and one remainder.
REST_STEP_US = 50_000
#: The board plays a started cycle's first pulse this long after `wave_chain` is sent
#: (pigpio begins every chain sent from the host with one delay block). Every time within
#: a cycle (`CompiledCycle.contractions`, the pulses) counts from the chain's own start.
CHAIN_START_DELAY_US = L.WAVE_START_DELAY_US
#: Longest segment of a continuous block the driver accepts (a continuous block is played
#: as consecutive segments so that nothing is queued more than one segment ahead).
MAX_SEGMENT_S = 120.0


def _half_up(x: Fraction) -> int:
    """round(x) with halves rounded up (Python's round() rounds halves to even)."""
    return math.floor(x + Fraction(1, 2))


def _frac(x: float) -> Fraction:
    """A float as the decimal the clinician wrote (0.1 is 1/10, not 0.1000000000000000055)."""
    return Fraction(repr(float(x)))


#: The fields of a block the compiler reads (`schedules.model.Block` names them the same).
WAVE_FIELDS = ("hz", "pulse_us", "on_s", "off_s", "ramp_up_s", "ramp_down_s", "pattern")


@dataclass(frozen=True, kw_only=True)
class BlockWave:
    """Exactly the fields of a block that the compiler needs, under the block's names:
    a small frozen (hashable) view of a `schedules.model.Block`, built once per block by
    the plan (`BlockWave.of(block)`). Built from a block the prescription's validator
    accepted, its values are trusted: they are never checked a second time."""

    hz: float
    pulse_us: float
    on_s: float
    off_s: float
    ramp_up_s: float
    ramp_down_s: float
    pattern: str = "synchronous"
    #: True only from `of` (a validated block): the compiler's fence is not run again.
    validated: bool = field(default=False, compare=False, repr=False)

    @classmethod
    def of(cls, block) -> "BlockWave":
        """The wave of a `schedules.model.Block` the validator accepted (its values as
        they are now, a patient's adjustments included)."""
        return cls(**{name: getattr(block, name) for name in WAVE_FIELDS}, validated=True)


class CycleSpec:
    """One contraction cycle of a block, on `channels` channels: the block's wave (a
    `BlockWave`, held, not copied) and what the cycle adds to it.

    A continuous block (off_s = 0) is played as segments: `segment_on_s` is a segment's
    own length (None: the block's `on_s`), and `ramp_up`/`ramp_down` False drop that ramp
    (the first segment ramps up only, the middle ones are pure plateau, the last ramps
    down only; see `homeapp.plan.continuous_segments`).

    Built by the plan: `CycleSpec(wave=BlockWave.of(block), channels=2)`. A direct caller
    may still give the wave's fields by name, `CycleSpec(hz=50, pulse_us=300, on_s=5,
    off_s=10, ramp_up_s=1, ramp_down_s=1)`: those meet the compiler's own fence (the
    device limits). Either way the cycle's own rules are checked (a segment's length, the
    channels, the pattern on them). Two specs of the same cycle are equal and hash alike
    however they were built (the driver compiles each once)."""

    __slots__ = ("wave", "channels", "segment_on_s", "ramp_up", "ramp_down")

    wave: BlockWave
    channels: int
    segment_on_s: float | None
    ramp_up: bool
    ramp_down: bool

    def __init__(self, *, wave: BlockWave | None = None, channels: int = 1,
                 segment_on_s: float | None = None, ramp_up: bool = True, ramp_down: bool = True,
                 **wave_fields) -> None:
        if wave is None:
            unknown = sorted(set(wave_fields) - set(WAVE_FIELDS))
            missing = sorted(set(WAVE_FIELDS) - {"pattern"} - set(wave_fields))
            if unknown or missing:
                raise TypeError(f"CycleSpec: unknown {unknown}, missing {missing} "
                                f"(give wave= or all of {', '.join(WAVE_FIELDS)})")
            wave = BlockWave(**wave_fields)
        elif wave_fields:
            raise TypeError(f"CycleSpec: wave= and the wave's fields {sorted(wave_fields)} "
                            f"given together")
        for name, value in (("wave", wave), ("channels", channels), ("segment_on_s", segment_on_s),
                            ("ramp_up", ramp_up), ("ramp_down", ramp_down)):
            object.__setattr__(self, name, value)
        problems = _spec_problems(self)
        if problems:
            raise WaveformError("; ".join(problems))

    def __setattr__(self, name, value):
        raise AttributeError(f"CycleSpec is frozen: cannot set {name}")

    # the wave's values, read from the block's view (not copied)
    @property
    def hz(self) -> float:
        return self.wave.hz

    @property
    def pulse_us(self) -> float:
        return self.wave.pulse_us

    @property
    def ramp_up_s(self) -> float:
        return self.wave.ramp_up_s

    @property
    def ramp_down_s(self) -> float:
        return self.wave.ramp_down_s

    @property
    def pattern(self) -> str:
        return self.wave.pattern

    @property
    def off_s(self) -> float:
        return self.wave.off_s

    @property
    def on_s(self) -> float:
        """The contraction: the block's `on_s`, or a continuous segment's own length."""
        return self.wave.on_s if self.segment_on_s is None else self.segment_on_s

    def _key(self) -> tuple:
        return (self.hz, self.pulse_us, self.on_s, self.off_s, self.ramp_up_s, self.ramp_down_s,
                self.pattern, self.channels, self.ramp_up, self.ramp_down)

    def __eq__(self, other) -> bool:
        if not isinstance(other, CycleSpec):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(
            WAVE_FIELDS + ("channels", "ramp_up", "ramp_down"), self._key()))
        return f"CycleSpec({fields})"

    def __reduce__(self):
        return (_rebuild_spec, (self.wave, self.channels, self.segment_on_s, self.ramp_up, self.ramp_down))

    @classmethod
    def from_block(cls, block, channels: int, **overrides) -> "CycleSpec":
        """The cycle of a `schedules.model.Block` (current values, which the validator
        has accepted) on `channels` channels; `on_s=` (with `ramp_up=`/`ramp_down=`) cuts
        it into a continuous segment. (The plan builds the `BlockWave` once per block and
        passes `wave=`; this is the same for one spec.)"""
        wave = BlockWave.of(block)
        segment_on_s = overrides.pop("on_s", None)
        ramps = {k: overrides.pop(k) for k in ("ramp_up", "ramp_down") if k in overrides}
        if overrides:  # off_s / pattern of the cycle other than the block's
            values = {name: getattr(wave, name) for name in WAVE_FIELDS} | overrides
            wave = BlockWave(**values, validated=True)
        return cls(wave=wave, channels=channels, segment_on_s=segment_on_s, **ramps)


def _rebuild_spec(wave, channels, segment_on_s, ramp_up, ramp_down) -> CycleSpec:
    return CycleSpec(wave=wave, channels=channels, segment_on_s=segment_on_s,
                     ramp_up=ramp_up, ramp_down=ramp_down)


def _spec_problems(spec: CycleSpec) -> list[str]:
    """What is wrong with a cycle. A wave of a validated block is not checked against the
    device limits again, nor what the validator proved of it (its on_s, ramps and
    pattern); a segment's own length, and the channels the cycle plays on, always are."""
    problems: list[str] = []
    trusted = spec.wave.validated
    segment = spec.segment_on_s is not None

    def num(name: str, lo: float, hi: float, unit: str) -> None:
        v = getattr(spec, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            problems.append(f"{name}: {v!r} is not a number")
        elif not lo <= v <= hi:
            problems.append(f"{name}: {v:g} is outside the device limits "
                            f"({lo:g} to {hi:g} {unit})")

    if not trusted:  # a direct caller: the compiler's own fence
        for name in ("hz", "pulse_us", "off_s", "ramp_up_s", "ramp_down_s"):
            lim = DEVICE_LIMITS[name]
            num(name, lim.low, lim.high, lim.unit)
    if not trusted or segment:
        num("on_s", 0.01, MAX_SEGMENT_S, "s")
        if not problems:
            ramps = (spec.ramp_up_s if spec.ramp_up else 0) + (spec.ramp_down_s if spec.ramp_down else 0)
            if ramps > spec.on_s + 1e-9:
                problems.append(f"ramp_up_s + ramp_down_s: {ramps:g} is longer than on_s {spec.on_s:g}")
            if spec.on_s * spec.hz < 1 - 1e-9:
                problems.append(f"on_s: {spec.on_s:g} s holds no pulse at {spec.hz:g} Hz")
    if not trusted and spec.pattern not in PATTERNS:
        problems.append(f"pattern: {spec.pattern!r} is not one of {', '.join(PATTERNS)}")
    if isinstance(spec.channels, bool) or spec.channels not in (1, 2):
        problems.append(f"channels: {spec.channels!r} is not 1 or 2")
    if spec.pattern == "alternating" and spec.channels == 2 and not problems and (not trusted or segment):
        if spec.off_s + 1e-9 < spec.on_s:
            problems.append(f"off_s: {spec.off_s:g} is shorter than on_s {spec.on_s:g} "
                            f"(alternating needs off_s >= on_s)")
    if spec.pattern == "alternating" and spec.channels == 1:
        problems.append("pattern: alternating needs 2 channels")
    return problems


@dataclass(frozen=True)
class Grid:
    """The pulse grid: pulse k at `floor(k*period + 1/2)` µs; `block` pulses span `block_us`."""

    period: Fraction
    block: int

    @classmethod
    def for_hz(cls, hz: float) -> "Grid":
        period = Fraction(1_000_000) / _frac(hz)
        if period.denominator > MAX_GRID_BLOCK:
            period = Fraction(round(1e6 / hz))
        return cls(period, period.denominator)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_p", self.period.numerator)
        object.__setattr__(self, "_q", self.period.denominator)

    def t(self, k: int) -> int:
        q = self._q
        return (2 * k * self._p + q) // (2 * q)

    @property
    def block_us(self) -> int:
        return int(self.block * self.period)


@dataclass(frozen=True)
class WaveDef:
    """One distinct wave: pigpio pulses and what creating it costs."""

    pulses: tuple[Pulse, ...]
    duration_us: int
    cbs: int
    ools: int


@dataclass(frozen=True)
class PlannedPulse:
    """A biphasic pulse the cycle will produce (times in µs from the cycle's start)."""

    channel: int
    start_us: int
    width_us: int


@dataclass(frozen=True)
class CompiledCycle:
    """What `compile_cycle` produces; the driver creates `waves` and sends the chain."""

    spec: CycleSpec
    waves: tuple[WaveDef, ...]
    #: ("wave", index into waves) | ("loop",) | ("repeat", count) | ("delay", µs)
    tokens: tuple[tuple, ...]
    duration_us: int
    #: per channel: the contraction windows [t0, t1) in µs from the cycle's start
    contractions: tuple[tuple[tuple[int, int], ...], ...]
    #: per channel: widths of the contraction's pulses in order (start times: grid.t(k))
    widths: tuple[tuple[int, ...], ...]
    grid: Grid
    gap_us: int
    foot_blocks: int
    leg_masks: tuple[tuple[int, int], ...] = field(repr=False)
    wave_cbs: int = 0
    wave_ools: int = 0
    chain_cbs: int = 0
    counters: int = 0
    nesting: int = 0
    max_wave_pulses: int = 0

    @property
    def key(self) -> tuple:
        """Identity of the waves (two cycles with the same key share created waves)."""
        return tuple(w.pulses for w in self.waves)

    def chain_bytes(self, wave_ids: Sequence[int]) -> bytes:
        """The `wave_chain` script, with `wave_ids[i]` the pigpio id of `waves[i]`."""
        out = bytearray()
        for tok in self.tokens:
            kind = tok[0]
            if kind == "wave":
                out.append(wave_ids[tok[1]])
            elif kind == "loop":
                out += bytes((255, 0))
            elif kind == "repeat":
                out += bytes((255, 1, tok[1] & 0xFF, tok[1] >> 8))
            elif kind == "delay":
                out += bytes((255, 2, tok[1] & 0xFF, tok[1] >> 8))
        return bytes(out)

    def planned_pulses(self, channel: int) -> list[PlannedPulse]:
        """Every pulse `channel` gets in one cycle, in order."""
        out = []
        for t0, _ in self.contractions[channel]:
            out.extend(PlannedPulse(channel, t0 + self.grid.t(k), w)
                       for k, w in enumerate(self.widths[channel]))
        return out


def ramp_widths(n: int, width: int) -> list[int]:
    """Ramp-up widths of n pulses towards `width` (see the module notes)."""
    d = 2 * (n + 1)
    return [max(1, (2 * width * (k + 1) + n + 1) // d) for k in range(n)]


def _wave(grid: Grid, k0: int, widths: Sequence[int], masks: tuple[int, int], gap: int) -> WaveDef:
    """Pulses k0 .. k0+len(widths)-1 of a contraction, from the first pulse's start to the
    next pulse's start."""
    a, b = masks
    tk = grid.t
    pulses = []
    for i, w in enumerate(widths):
        t = tk(k0 + i)
        rest = tk(k0 + i + 1) - t - 2 * w - gap
        if rest <= 0:
            raise WaveformError(f"a pulse of {2 * w + gap} µs does not fit its period")
        pulses += [(a, 0, w), (0, a, gap), (b, 0, w), (0, b, rest)]
    pulses_t = tuple(pulses)
    end = tk(k0 + len(widths)) - tk(k0)
    return WaveDef(pulses_t, end, L.wave_cbs(pulses_t, dma_lite=True), L.wave_ools(pulses_t))


class _Builder:
    def __init__(self, grid: Grid, gap: int) -> None:
        self.grid, self.gap = grid, gap
        self.waves: list[WaveDef] = []
        self.index: dict[tuple, int] = {}
        self.tokens: list[tuple] = []

    def add(self, wave: WaveDef) -> int:
        i = self.index.get(wave.pulses)
        if i is None:
            i = self.index[wave.pulses] = len(self.waves)
            self.waves.append(wave)
        return i

    def explicit(self, k0: int, widths: Sequence[int], masks) -> None:
        for s in range(0, len(widths), MAX_PULSES_PER_WAVE):
            chunk = widths[s:s + MAX_PULSES_PER_WAVE]
            self.tokens.append(("wave", self.add(_wave(self.grid, k0 + s, chunk, masks, self.gap))))

    def looped(self, body: list[tuple], count: int) -> None:
        """`body` tokens `count` times: a loop of <= 65535, nested when longer, and no
        loop at all for a count of 1 (pigpio needs no counter then)."""
        if count <= 0:
            return
        if count == 1:
            self.tokens += body
            return
        if count <= L.PI_MAX_WAVE_CYCLES:
            self.tokens += [("loop",), *body, ("repeat", count)]
            return
        outer, rest = divmod(count, L.PI_MAX_WAVE_CYCLES)
        inner = [("loop",), *body, ("repeat", L.PI_MAX_WAVE_CYCLES)]
        self.looped(inner, outer)
        self.looped(body, rest)

    def blocks(self, k0: int, n_pulses: int, width: int, masks) -> None:
        """n_pulses (a multiple of the grid block) of one width: one block wave looped."""
        q = self.grid.block
        wave = self.add(_wave(self.grid, k0, [width] * q, masks, self.gap))
        self.looped([("wave", wave)], n_pulses // q)

    def delay(self, us: int) -> None:
        steps, rem = divmod(us, REST_STEP_US)
        if steps:
            self.looped([("delay", REST_STEP_US)], steps)
        if rem:
            self.tokens.append(("delay", rem))


def pulse_count(on_s: float, grid: Grid) -> int:
    """N: the pulses of a contraction of `on_s` on `grid` (at least 1)."""
    return max(1, math.floor(_frac(on_s) * 1_000_000 / grid.period + Fraction(1, 10**6)))


def cycle_duration_us(spec: CycleSpec) -> int:
    """How long one cycle of `spec` lasts on the board, in whole µs."""
    return _half_up((_frac(spec.on_s) + _frac(spec.off_s)) * 1_000_000)


def contraction_windows_us(spec: CycleSpec) -> tuple[tuple[int, int], ...]:
    """Per channel (`spec.channels` of them): `[t0, t1)` in µs from the cycle's start,
    from the channel's first pulse to where its pulse grid ends (the start its next pulse
    would have). The one source of when each channel contracts: the compiled cycle plays
    exactly these, and the plan and the engine read them from here."""
    grid = Grid.for_hz(spec.hz)
    span = grid.t(pulse_count(spec.on_s, grid))
    if spec.channels == 2 and spec.pattern == "alternating":
        return ((0, span), (span, 2 * span))  # channel 1 starts where channel 0's grid ends
    return tuple((0, span) for _ in range(spec.channels))


def _contraction_widths(spec: CycleSpec, grid: Grid, foot: int) -> tuple[list[int], int, int, int]:
    """Widths of the N pulses of a contraction and (n_up, n_down, foot pulses)."""
    hz = _frac(spec.hz)
    n_total = pulse_count(spec.on_s, grid)
    width = int(_half_up(_frac(spec.pulse_us)))
    n_up = _half_up(_frac(spec.ramp_up_s) * hz) if spec.ramp_up else 0
    n_down = _half_up(_frac(spec.ramp_down_s) * hz) if spec.ramp_down else 0
    # At least one plateau pulse: the top of every contraction reaches the prescribed width.
    while n_up + n_down > n_total - 1:
        if n_down >= n_up:
            n_down -= 1
        else:
            n_up -= 1
    foot_pulses = foot * grid.block
    up = _foot_ramp(n_up, width, foot_pulses)
    down = _foot_ramp(n_down, width, foot_pulses)[::-1]
    return up + [width] * (n_total - n_up - n_down) + down, n_up, n_down, foot_pulses


def _foot_ramp(n: int, width: int, foot_pulses: int) -> list[int]:
    if foot_pulses and n > foot_pulses:
        lin = ramp_widths(n - foot_pulses, width)
        return [lin[0]] * foot_pulses + lin
    return ramp_widths(n, width)


def compile_cycle(spec: CycleSpec, pins, *, foot: int | None = None) -> CompiledCycle:
    """Compile one cycle of `spec` for the legs in `pins` (a `hw.pins.PinMap`).

    Raises `WaveformError` when the cycle cannot fit pigpio's limits (it always does for
    every `CycleSpec` that validates; the property tests prove it)."""
    if foot is not None:
        return _compile(spec, pins, foot)
    grid = Grid.for_hz(spec.hz)
    cycle = _compile(spec, pins, 0)
    if _fits(cycle):
        return cycle
    _, n_up, n_down, _ = _contraction_widths(spec, grid, 0)
    longest = max(n_up, n_down)
    f = 1
    while (f + 1) * grid.block <= longest:
        cycle = _compile(spec, pins, f)
        if _fits(cycle):
            return cycle
        f += 1
    raise WaveformError(_why(cycle))


def _fits(c: CompiledCycle) -> bool:
    return not _why(c)


def _why(c: CompiledCycle) -> str:
    problems = []
    if c.wave_cbs > L.WAVE_CB_BUDGET:
        problems.append(f"{c.wave_cbs} control blocks > {L.WAVE_CB_BUDGET}")
    if c.wave_ools > L.WAVE_OOL_BUDGET:
        problems.append(f"{c.wave_ools} GPIO words > {L.WAVE_OOL_BUDGET}")
    if c.chain_cbs > L.PI_CHAIN_MAX_CBS:
        problems.append(f"chain of {c.chain_cbs} control blocks > {L.PI_CHAIN_MAX_CBS}")
    if c.counters > L.PI_CHAIN_MAX_COUNTERS:
        problems.append(f"{c.counters} chain counters > {L.PI_CHAIN_MAX_COUNTERS}")
    if c.nesting > L.PI_CHAIN_MAX_NESTING:
        problems.append(f"loops nested {c.nesting} deep > {L.PI_CHAIN_MAX_NESTING}")
    if len(c.waves) > L.PI_MAX_WAVES:
        problems.append(f"{len(c.waves)} waves > {L.PI_MAX_WAVES}")
    if c.max_wave_pulses >= L.PI_WAVE_MAX_PULSES:
        problems.append(f"a wave of {c.max_wave_pulses} pulses >= {L.PI_WAVE_MAX_PULSES}")
    return "; ".join(problems)


def _compile(spec: CycleSpec, pins, foot: int) -> CompiledCycle:
    grid = Grid.for_hz(spec.hz)
    gap = INTERPHASE_GAP_US
    widths, n_up, n_down, foot_pulses = _contraction_widths(spec, grid, foot)
    n_total = len(widths)
    legs = pins.legs
    leg_masks = tuple((1 << a, 1 << b) for a, b in legs)
    b = _Builder(grid, gap)

    def contraction(masks: tuple[int, int]) -> None:
        k = 0
        if foot_pulses and n_up > foot_pulses:
            b.blocks(0, foot_pulses, widths[0], masks)
            k = foot_pulses
        if n_up > k:
            b.explicit(k, widths[k:n_up], masks)
        k = n_up
        plateau = n_total - n_up - n_down
        q = grid.block
        whole = plateau - plateau % q
        if whole >= 2 * q:
            b.blocks(k, whole, widths[k], masks)
            k += whole
        down_end = n_total - (foot_pulses if foot_pulses and n_down > foot_pulses else 0)
        if down_end > k:
            b.explicit(k, widths[k:down_end], masks)
        if down_end < n_total:
            b.blocks(down_end, n_total - down_end, widths[-1], masks)

    duration = cycle_duration_us(spec)
    per_channel_windows = contraction_windows_us(spec)
    windows: tuple = tuple((w,) for w in per_channel_windows) + ((),) * (2 - spec.channels)
    if spec.channels == 1:
        contraction(leg_masks[0])
        used_masks = leg_masks[:1]
    elif spec.pattern == "synchronous":
        contraction((leg_masks[0][0] | leg_masks[1][0], leg_masks[0][1] | leg_masks[1][1]))
        used_masks = leg_masks
    else:
        contraction(leg_masks[0])
        contraction(leg_masks[1])
        used_masks = leg_masks
    end = max(w[1] for ws in windows for w in ws)
    if end > duration:
        raise WaveformError(f"the contraction ({end} µs) is longer than the cycle ({duration} µs)")
    b.delay(duration - end)

    chain_cbs, counters, nesting = _chain_cost(b.tokens, b.waves)
    per_channel = tuple(tuple(widths) if windows[ch] else () for ch in range(2))
    return CompiledCycle(
        spec=spec, waves=tuple(b.waves), tokens=tuple(b.tokens), duration_us=duration,
        contractions=windows, widths=per_channel, grid=grid, gap_us=gap,
        foot_blocks=foot if foot_pulses and max(n_up, n_down) > foot_pulses else 0,
        leg_masks=used_masks,
        wave_cbs=sum(w.cbs for w in b.waves), wave_ools=sum(w.ools for w in b.waves),
        chain_cbs=chain_cbs, counters=counters, nesting=nesting,
        max_wave_pulses=max(len(w.pulses) for w in b.waves))


def _chain_cost(tokens: Iterable[tuple], waves: Sequence[WaveDef]) -> tuple[int, int, int]:
    """(chain CBs with DMA-lite delays, counters, nesting depth) — pigpio's arithmetic."""
    cbs, counters, depth, deepest = 1, 0, 0, 0
    for tok in tokens:
        kind = tok[0]
        if kind == "wave":
            cbs += 1
        elif kind == "loop":
            depth += 1
            deepest = max(deepest, depth)
        elif kind == "repeat":
            depth -= 1
            if tok[1] >= 2:
                cbs += 1
                counters += 1
        elif kind == "delay":
            cbs += L.delay_cbs(tok[1], dma_lite=True)
    return cbs + 1, counters, deepest
