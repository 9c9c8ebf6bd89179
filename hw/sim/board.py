"""The virtual stimulation board with pigpio's GPIO, SPI, notification and wave state.

One object is the whole machine behind the socket: the Pi's GPIO block (modes, output
latch, pulls, levels), pigpio's wave table and output DMA engine, its notification
handles and SPI handles, and the reference isolated board wired to those lines
(design.md): two H-bridge channels, the output enable gated by a retriggerable heartbeat
watchdog and the e-stop, the MCP4822 amplitude DAC and the MCP3008 contact sense.

Time is the caller's clock. The board keeps its own position `t_us` (µs since it was
created) and is brought up to the clock lazily: before every request, by a VirtualClock's
`on_advance` listener, or by the server's ticker under a real or scaled clock. Bringing it
up to a time plays every DMA edge due by then, in order, and fires the watchdog at the
exact microsecond it expires; nothing is stepped microsecond by microsecond.
"""
from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hw import pigpio_limits as L
from hw.clock import Clock
from hw.pins import PinMap

from .trace import SIGNALS, Trace, TraceRecorder
from .waves import DmaEngine, PigpioError, WaveTable, chain, once, parse_chain, repeat

#: Pi 4 Model B, 4 GB, revision 1.1 (what HWVER answers; gpiozero maps it to the board).
HW_REVISION = 0xC03111
PIGPIO_VERSION = 79
MAX_GPIO = 53
MODE_INPUT, MODE_OUTPUT = 0, 1
PUD_OFF, PUD_DOWN, PUD_UP = 0, 1, 2
#: MCP3008 counts of the contact sense with the electrode on / off (design: >= 600, <= 40).
ADC_LEAD_ON_COUNTS = 650
ADC_LEAD_OFF_COUNTS = 20


@dataclass
class _Notify:
    sink: Callable[[bytes], None]
    bits: int = 0
    running: bool = False
    seq: int = 0


@dataclass
class _Spi:
    channel: int
    baud: int
    flags: int


class SimBoard:
    """The simulated Pi + stimulation board. Thread-safe: one lock guards all state."""

    def __init__(self, pins: PinMap, clock: Clock, *, trace_max_rows: int | None = None) -> None:
        self.pins = pins
        self.clock = clock
        self._t0 = clock.now()
        self._lock = threading.RLock()
        self.t_us = 0
        # the Pi's GPIO block
        self._modes = [MODE_INPUT] * (MAX_GPIO + 1)
        self._pulls = [PUD_OFF] * (MAX_GPIO + 1)
        self._glitch_us = [0] * 32
        self._latch = 0
        self._out_mask = 0
        self._estop_bit = 1 << pins.estop
        self._in_levels = self._estop_bit  # the board pulls the e-stop line up (released)
        self._levels = self._in_levels
        # the board
        self._legs = [(1 << pins.ch0_a, SIGNALS.index("ch0.a")),
                      (1 << pins.ch0_b, SIGNALS.index("ch0.b")),
                      (1 << pins.ch1_a, SIGNALS.index("ch1.a")),
                      (1 << pins.ch1_b, SIGNALS.index("ch1.b"))]
        self._leg_bits = sum(b for b, _ in self._legs)
        self._enable_bit = 1 << pins.enable
        self._hb_bit = 1 << pins.heartbeat
        self._board_bits = self._leg_bits | self._enable_bit | self._hb_bit | self._estop_bit
        self._wd_us = pins.watchdog_ms * 1000
        self._wd_alive = False
        self._wd_deadline = 0
        self._eff_enable = 0
        self._ma = [0.0, 0.0]
        self._leads = [True, True]
        self.trace_rec = TraceRecorder({name: (1 if name.startswith("lead.") else 0)
                                        for name in SIGNALS}, max_rows=trace_max_rows)
        self._sig = {name: i for i, name in enumerate(SIGNALS)}
        # pigpio's wave machinery
        self.waves = WaveTable()
        self.dma = DmaEngine()
        self._dma_running = False
        self._end_ptr = False  # pigpio's waveEndPtr is set: sync sends may follow
        self._seg_wave = None
        self._seg_base = 0
        self._seg_idx = 0
        self._seg_end = 0
        # handles
        self._notify: dict[int, _Notify] = {}
        self._notify_bits = 0
        self._spi: dict[int, _Spi] = {}
        if getattr(clock, "virtual", False) and hasattr(clock, "on_advance"):
            clock.on_advance(lambda _t_from, _t_to: self.sync())

    # -- time ---------------------------------------------------------------------------
    def clock_us(self) -> int:
        """The caller's clock now, in µs since the board was created."""
        return int(round((self.clock.now() - self._t0) * 1_000_000))

    def sync(self) -> None:
        """Bring the board up to the caller's clock."""
        with self._lock:
            self._advance(self.clock_us())

    def _advance(self, to_us: int) -> None:
        if to_us < self.t_us:
            return  # the board never goes back in time
        apply = self._apply
        while True:
            wave = self._seg_wave
            if wave is not None:
                times, ons, offs = wave.times_us, wave.ons, wave.offs
                base, idx, n = self._seg_base, self._seg_idx, len(times)
                while idx < n:
                    t = base + times[idx]
                    if t > to_us:
                        break
                    if self._wd_alive and self._wd_deadline <= t:
                        self._expire_watchdog()
                    apply(t, ons[idx], offs[idx])
                    idx += 1
                self._seg_idx = idx
                if idx < n:
                    break
            if self._dma_running and self._seg_end <= to_us:
                seg = self.dma.next_segment()
                if seg is None:
                    self._dma_running = False
                    self._seg_wave = None
                    break
                self._seg_base, self._seg_wave, self._seg_end = seg
                self._seg_idx = 0
                continue
            break
        if self._wd_alive and self._wd_deadline <= to_us:
            self._expire_watchdog()
        if to_us > self.t_us:
            self.t_us = to_us

    # -- levels and what the board makes of them -----------------------------------------
    def _apply(self, t_us: int, on: int, off: int) -> None:
        """A DMA write to GPSET/GPCLR: only lines in output mode follow the latch."""
        latch = (self._latch | on) & ~off
        self._latch = latch
        out = self._out_mask
        levels = (latch & out) | (self._in_levels & ~out)
        changed = levels ^ self._levels
        if changed:
            self._levels = levels
            self._changed(t_us, levels, changed)

    def _relevel(self) -> None:
        out = self._out_mask
        levels = (self._latch & out) | (self._in_levels & ~out)
        changed = levels ^ self._levels
        if changed:
            self._levels = levels
            self._changed(self.t_us, levels, changed)

    def _changed(self, t_us: int, levels: int, changed: int) -> None:
        if changed & self._board_bits:
            rec = self.trace_rec.record
            if changed & self._leg_bits:
                for bit, sig in self._legs:
                    if changed & bit:
                        rec(sig, t_us, 1 if levels & bit else 0)
            if changed & self._hb_bit:
                rec(self._sig["heartbeat"], t_us, 1 if levels & self._hb_bit else 0)
                self._wd_alive = True  # retriggered by either edge
                self._wd_deadline = t_us + self._wd_us
            if changed & self._estop_bit:
                rec(self._sig["estop"], t_us, 0 if levels & self._estop_bit else 1)
            if changed & (self._hb_bit | self._enable_bit | self._estop_bit):
                self._update_enable(t_us)
        if changed & self._notify_bits:
            self._report(t_us, levels, changed)

    def _update_enable(self, t_us: int) -> None:
        lv = self._levels
        eff = 1 if (lv & self._enable_bit and self._wd_alive and lv & self._estop_bit) else 0
        if eff != self._eff_enable:
            self._eff_enable = eff
            self.trace_rec.record(self._sig["enable"], t_us, eff)

    def _expire_watchdog(self) -> None:
        """No heartbeat edge for `watchdog_ms`: the board cuts the output at that µs."""
        self._wd_alive = False
        self._update_enable(self._wd_deadline)

    def _report(self, t_us: int, levels: int, changed: int) -> None:
        tick = t_us & 0xFFFFFFFF
        word = levels & 0xFFFFFFFF
        for h in self._notify.values():
            if h.running and h.bits & changed:
                h.sink(struct.pack("<HHII", h.seq, 0, tick, word))
                h.seq = (h.seq + 1) & 0xFFFF

    # -- fault injection and the board's own inputs ---------------------------------------
    def press_estop(self) -> None:
        """The e-stop button pressed: its line goes low and the output is cut at once."""
        with self._lock:
            self._advance(self.clock_us())
            self._in_levels &= ~self._estop_bit
            self._relevel()

    def release_estop(self) -> None:
        with self._lock:
            self._advance(self.clock_us())
            self._in_levels |= self._estop_bit
            self._relevel()

    def set_lead(self, channel: int, connected: bool) -> None:
        """An electrode comes loose or is reattached: the contact sense reading changes.
        The legs and enable do not: reacting is the app's job."""
        with self._lock:
            self._advance(self.clock_us())
            self._leads[channel] = bool(connected)
            self.trace_rec.record(self._sig[f"lead.ch{channel}"], self.t_us, 1 if connected else 0)

    @property
    def estop_pressed(self) -> bool:
        return not self._levels & self._estop_bit

    def lead_connected(self, channel: int) -> bool:
        """The electrode of `channel` is attached (as `set_lead` last left it)."""
        with self._lock:
            return self._leads[channel]

    def effective_enable(self) -> bool:
        with self._lock:
            self._advance(self.clock_us())
            return bool(self._eff_enable)

    def amplitude_ma(self, channel: int) -> float:
        with self._lock:
            return self._ma[channel]

    # -- trace ---------------------------------------------------------------------------
    def write_trace(self, path: str | Path) -> None:
        """Bring the board up to the clock and write contract.md's trace CSV."""
        with self._lock:
            self._advance(self.clock_us())
            self.trace_rec.write(path)

    def trace(self) -> Trace:
        with self._lock:
            self._advance(self.clock_us())
            return self.trace_rec.to_trace()

    # -- pigpio: GPIO --------------------------------------------------------------------
    def _begin(self) -> None:
        self._advance(self.clock_us())

    @staticmethod
    def _check_gpio(gpio: int) -> None:
        if gpio > MAX_GPIO:
            raise PigpioError(L.PI_BAD_GPIO)

    def set_mode(self, gpio: int, mode: int) -> int:
        self._check_gpio(gpio)
        if mode > 7:
            raise PigpioError(L.PI_BAD_MODE)
        with self._lock:
            self._begin()
            self._modes[gpio] = mode
            if gpio < 32:
                bit = 1 << gpio
                self._out_mask = (self._out_mask | bit) if mode == MODE_OUTPUT else (self._out_mask & ~bit)
                self._relevel()
        return 0

    def get_mode(self, gpio: int) -> int:
        self._check_gpio(gpio)
        return self._modes[gpio]

    def set_pull(self, gpio: int, pud: int) -> int:
        self._check_gpio(gpio)
        if pud > PUD_UP:
            raise PigpioError(L.PI_BAD_PUD)
        with self._lock:
            self._begin()
            self._pulls[gpio] = pud
            bit = 1 << gpio
            # the board drives its own lines (pull-downs on the outputs, the e-stop switch);
            # a Pi pull only decides the level of an unconnected input
            if gpio < 32 and not bit & self._board_bits:
                if pud == PUD_UP:
                    self._in_levels |= bit
                elif pud == PUD_DOWN:
                    self._in_levels &= ~bit
                self._relevel()
        return 0

    def read(self, gpio: int) -> int:
        self._check_gpio(gpio)
        with self._lock:
            self._begin()
            return (self._levels >> gpio) & 1 if gpio < 32 else 0

    def write(self, gpio: int, level: int) -> int:
        """pigpio's gpioWrite: forces the line to output, then sets it."""
        self._check_gpio(gpio)
        if level > 1:
            raise PigpioError(L.PI_BAD_LEVEL)
        with self._lock:
            self._begin()
            self._modes[gpio] = MODE_OUTPUT
            if gpio < 32:
                bit = 1 << gpio
                self._out_mask |= bit
                self._latch = (self._latch | bit) if level else (self._latch & ~bit)
                self._relevel()
        return 0

    def read_bank1(self) -> int:
        with self._lock:
            self._begin()
            return self._levels & 0xFFFFFFFF

    def glitch_filter(self, gpio: int, steady_us: int) -> int:
        """Accepted and remembered; the simulator's inputs do not bounce, so not applied."""
        if gpio > 31:
            raise PigpioError(L.PI_BAD_USER_GPIO)
        if steady_us > 300_000:
            raise PigpioError(L.PI_BAD_FILTER)
        self._glitch_us[gpio] = steady_us
        return 0

    def tick(self) -> int:
        with self._lock:
            self._begin()
            return self.t_us & 0xFFFFFFFF

    # -- pigpio: notifications -----------------------------------------------------------
    def notify_open(self, sink: Callable[[bytes], None]) -> int:
        with self._lock:
            for h in range(L.PI_NOTIFY_SLOTS):
                if h not in self._notify:
                    self._notify[h] = _Notify(sink)
                    return h
        raise PigpioError(L.PI_NO_HANDLE)

    def notify_begin(self, handle: int, bits: int) -> int:
        with self._lock:
            self._begin()
            h = self._notify.get(handle)
            if h is None:
                raise PigpioError(L.PI_BAD_HANDLE)
            h.bits, h.running = bits, True
            self._notify_bits = self._union_bits()
        return 0

    def notify_close(self, handle: int) -> int:
        with self._lock:
            if self._notify.pop(handle, None) is None:
                raise PigpioError(L.PI_BAD_HANDLE)
            self._notify_bits = self._union_bits()
        return 0

    def _union_bits(self) -> int:
        bits = 0
        for h in self._notify.values():
            if h.running:
                bits |= h.bits
        return bits

    # -- pigpio: SPI (the DAC and the ADC) -------------------------------------------------
    def spi_open(self, channel: int, baud: int, flags: int) -> int:
        aux = bool(flags & (1 << 8))
        if channel > (2 if aux else 1):
            raise PigpioError(L.PI_BAD_SPI_CHANNEL)
        if not L.PI_SPI_MIN_BAUD <= baud <= L.PI_SPI_MAX_BAUD:
            raise PigpioError(L.PI_BAD_SPI_SPEED)
        with self._lock:
            for h in range(L.PI_SPI_SLOTS):
                if h not in self._spi:
                    self._spi[h] = _Spi(channel + (10 if aux else 0), baud, flags)
                    return h
        raise PigpioError(L.PI_NO_HANDLE)

    def spi_close(self, handle: int) -> int:
        with self._lock:
            if self._spi.pop(handle, None) is None:
                raise PigpioError(L.PI_BAD_HANDLE)
        return 0

    def spi_xfer(self, handle: int, data: bytes) -> bytes:
        """One transfer with chip select held: what the device clocks back."""
        with self._lock:
            self._begin()
            spi = self._spi.get(handle)
            if spi is None:
                raise PigpioError(L.PI_BAD_HANDLE)
            if not 1 <= len(data) <= L.PI_MAX_SPI_COUNT:
                raise PigpioError(L.PI_BAD_SPI_COUNT)
            if spi.channel == self.pins.channel_dac:
                self._dac_write(data)
                return bytes(len(data))
            if spi.channel == self.pins.channel_adc:
                return self._adc_xfer(data)
            return bytes(len(data))

    def _dac_write(self, data: bytes) -> None:
        """MCP4822: a 16-bit word per chip-select frame (other lengths are not latched).
        bit 15 channel (A=ch0, B=ch1), bit 13 /GA (0 = 2x), bit 12 /SHDN, bits 11-0 code."""
        if len(data) != 2:
            return
        word = (data[0] << 8) | data[1]
        channel = (word >> 15) & 1
        gain = 1.0 if not (word >> 13) & 1 else 0.5
        active = (word >> 12) & 1
        ma = round((word & 0xFFF) / 4096 * self.pins.dac_full_scale_ma * gain * active, 3)
        self._ma[channel] = ma
        self.trace_rec.record(self._sig[f"ch{channel}.ma"], self.t_us, ma)

    def _adc_xfer(self, data: bytes) -> bytes:
        """MCP3008 single-ended read `[0x01, 0x80 | n << 4, 0x00]` -> 10-bit count of input n."""
        rx = bytearray(len(data))
        if len(data) >= 3 and data[0] & 1 and data[1] & 0x80:
            n = (data[1] >> 4) & 7
            counts = 0
            if n < 2:
                counts = ADC_LEAD_ON_COUNTS if self._leads[n] else ADC_LEAD_OFF_COUNTS
            rx[1] = (counts >> 8) & 3
            rx[2] = counts & 0xFF
        return bytes(rx)

    # -- pigpio: waves -------------------------------------------------------------------
    def wave_clear(self) -> int:
        with self._lock:
            self.waves.clear()
        return 0

    def wave_add_new(self) -> int:
        with self._lock:
            self.waves.new()
        return 0

    def wave_add_generic(self, pulses: list[tuple[int, int, int]]) -> int:
        with self._lock:
            return self.waves.add_generic(pulses)

    def wave_create(self, pad_pct: tuple[int, int] | None = None) -> int:
        with self._lock:
            return self.waves.create(pad_pct)

    def wave_delete(self, wave_id: int) -> int:
        with self._lock:
            self.waves.delete(wave_id)
        return 0

    def wave_send(self, wave_id: int, mode: int) -> int:
        """WVTX / WVTXR / WVTXM. Returns the wave's control-block count, as pigpio does."""
        with self._lock:
            self._begin()
            wave = self.waves.get(wave_id)
            if mode > L.PI_WAVE_MODE_REPEAT_SYNC:
                raise PigpioError(L.PI_BAD_WAVE_MODE)
            item = repeat(wave) if mode & 1 else once(wave)
            if mode >= L.PI_WAVE_MODE_ONE_SHOT_SYNC and self._end_ptr and self._dma_running:
                self.dma.append(item)
            else:
                self._start(item)
            self._end_ptr = True
            return wave.cbs

    def wave_chain(self, script: bytes) -> int:
        with self._lock:
            self._begin()
            self._kill()  # pigpio stops the DMA before it even reads the script
            self._end_ptr = False
            tree = parse_chain(script, self.waves)
            self._start(chain(tree))
            self._end_ptr = True
            return 0

    def wave_tx_stop(self) -> int:
        """WVHLT: the DMA stops where it is; every line keeps its level."""
        with self._lock:
            self._begin()
            self._kill()
            self._end_ptr = False
        return 0

    def wave_tx_busy(self) -> int:
        with self._lock:
            self._begin()
            return 1 if self._dma_running else 0

    def wave_tx_at(self) -> int:
        with self._lock:
            self._begin()
            if not self._dma_running:
                return L.PI_NO_TX_WAVE
            wave = self._seg_wave
            if wave is None or wave.wave_id >= len(self.waves.slots) \
                    or self.waves.slots[wave.wave_id].wave is not wave:
                return L.PI_WAVE_NOT_FOUND
            return wave.wave_id

    def wave_stat(self, which: str, sub: int) -> int:
        """WVSM / WVSP / WVSC with sub-command 0 current, 1 highest, 2 maximum."""
        w = self.waves
        table = {"micros": (w.stats_micros, w.high_micros, L.PI_WAVE_MAX_MICROS, L.PI_BAD_WVSM_COMMND),
                 "pulses": (w.stats_pulses, w.high_pulses, L.PI_WAVE_MAX_PULSES, L.PI_BAD_WVSP_COMMND),
                 "cbs": (w.stats_cbs, w.high_cbs, L.PI_WAVE_MAX_CBS, L.PI_BAD_WVSC_COMMND)}[which]
        if sub > 2:
            raise PigpioError(table[3])
        return table[sub]

    def _kill(self) -> None:
        self.dma.kill()
        self._dma_running = False
        self._seg_wave = None

    def _start(self, item) -> None:
        self.dma.start(item, self.t_us)
        self._dma_running = True
        self._seg_wave = None
        self._seg_end = self.t_us + L.WAVE_START_DELAY_US

