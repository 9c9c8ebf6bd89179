"""The board driver: owns every line of the stimulation board through pigpiod.

`Stimulator` in the style of gpiozero's devices (a context manager; `close()` releases
everything): waves and chains through pigpio, amplitude through the MCP4822 on SPI, the
enable and heartbeat lines, the e-stop through a gpiozero input on a `PiGPIOFactory`,
electrode contact through the MCP3008. It runs unchanged against a real pigpiod on a
Pi 4 and against `hw.sim`.

Safety rules it keeps (docs/design.md):
- a board pigpio cannot time (anything but Pi 4, CM4, Pi 3B+, Zero 2 W by the revision
  pigpiod reports; a Pi 5 first of all) is refused before a single line is driven.
- one safe-stop sequence on every path (stop, pause, e-stop, fault, exception, SIGTERM,
  close, leaving a `with` block): enable low, stop the wave, all four legs low, both DAC
  channels to zero (code 0, /SHDN = 0). Every step is tried even when an earlier one
  fails; a failed step makes the stop raise `BoardFault`.
- nothing is queued further ahead than one cycle: the chain of a cycle ends with it;
  `start()` sends one chain, the caller re-arms/starts the next.
- amplitude is clamped to min(the channel's `max_ma`, DAC full scale) and never negative,
  whatever the caller asks; every `max_ma` is held at or under the device limit (the one
  place it is applied on this side); it can be lowered, never raised.
- one path from a step of the plan to pulses: `arm(spec)` compiles a `CycleSpec`
  (`hw.waveform`, each spec once) and checks its waves.
- the waves of a cycle are checked before they reach pigpio (only the armed channels'
  legs, both phases equal, never both legs high, never longer than the prescribed width).
- any pigpio error or lost/silent socket: safe stop attempted, the driver is marked
  faulted for good (`start()` refuses), and `BoardFault` (`PigpioError`,
  `ConnectionLost`) is raised. Nothing retries stimulation on its own.
"""
from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import math
import signal
import socket
import struct
import sys
import threading
import time
from array import array
from typing import Callable, Sequence

import pigpio

from hw import pigpio_limits as L
from hw.boards import check_supported
from hw.clock import Clock, RealClock
from hw.exc import BoardFault, ConnectionLost, HwError, NotArmed, PigpioError, WaveformError
from hw.pins import PinMap, load_pin_map
from hw.waveform import CompiledCycle, CycleSpec, compile_cycle
from schedules.limits import DEVICE_LIMITS

log = logging.getLogger(__name__)

#: MCP3008 counts at or above which an electrode is considered in contact.
CONTACT_THRESHOLD = 300
#: A pigpiod that does not answer within this is treated as lost.
SOCKET_TIMEOUT_S = 2.0
#: Real seconds a balanced stop waits at most for its clock to reach the end of the pulse
#: in flight (under 1 ms on the device). Only a clock that cannot move while this thread
#: waits (a test's held clock, stopped from its owner) ever reaches it: then the output
#: is cut at once, as without `balanced`.
BALANCED_WAIT_REAL_S = 0.5
#: MCP4822 word bits.
_DAC_CHANNEL_B = 1 << 15
_DAC_GAIN_1X = 1 << 13   # never set: the driver always writes GA = 0 (gain 2x)
_DAC_ACTIVE = 1 << 12    # /SHDN
_DAC_MAX_CODE = 4095

_ERROR_CODES = {text: code for code, text in pigpio._errors}


class _CountingSocket:
    """Wraps the pigpio client's command socket: counts bytes both ways (for the
    benchmark) and turns a closed socket (recv returning b'') into an error instead of the
    client's endless wait."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self.sent = 0
        self.received = 0
        self.waited_s = 0.0  # time spent waiting for pigpiod's replies

    def send(self, data, *args):
        n = self._sock.send(data, *args)
        self.sent += n
        return n

    def sendall(self, data, *args):
        self._sock.sendall(data, *args)
        self.sent += len(data)

    def recv(self, n, *args):
        t = time.perf_counter()
        try:
            data = self._sock.recv(n, *args)
        finally:
            self.waited_s += time.perf_counter() - t
        if not data and n:
            raise ConnectionResetError("pigpiod closed the connection")
        self.received += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


_LINK_ERRORS = (OSError, struct.error, ConnectionError, AttributeError, TypeError)


class _RawLink:
    """A bare pigpiod command connection for the emergency stop: no notification thread,
    every call bounded by one deadline (pigpio's own client would wait forever)."""

    _CMDS = {"write": 4, "wave_tx_stop": 33, "spi_write": 74}

    def __init__(self, host: str, port: int, deadline: float) -> None:
        self.deadline = deadline
        self.sock = socket.create_connection((host, port), timeout=self._left())

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("emergency stop deadline passed")
        return left

    def call(self, op: str, *args) -> int:
        cmd = self._CMDS[op]
        if op == "spi_write":
            handle, data = args
            msg = struct.pack("IIII", cmd, handle, 0, len(data)) + bytes(data)
        elif op == "write":
            msg = struct.pack("IIII", cmd, args[0], args[1], 0)
        else:
            msg = struct.pack("IIII", cmd, 0, 0, 0)
        self.sock.settimeout(self._left())
        self.sock.sendall(msg)
        reply = b""
        while len(reply) < 16:
            self.sock.settimeout(self._left())
            chunk = self.sock.recv(16 - len(reply))
            if not chunk:
                raise ConnectionResetError("pigpiod closed the emergency connection")
            reply += chunk
        res = struct.unpack("12si", reply)[1]
        if res < 0:
            raise PigpioError(op, res, L.ERROR_NAMES.get(res, ""))
        return res

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Stimulator:
    """The stimulation board.

        with Stimulator(pins=pins, clock=clock, host=h, port=p, max_ma=(60.0, 40.0)) as stim:
            stim.arm(spec); stim.start(); ...   # spec: a hw.waveform.CycleSpec

    `max_ma`: the prescription's `max_ma` per channel, the most current it may get (a
    missing channel's is 0).

    `arm()` takes a step of the plan (a `CycleSpec`) and compiles it itself, each spec
    once (`compile()`, cached), or an already compiled cycle."""

    #: Compiled cycles kept (a session's distinct steps are a few; continuous blocks
    #: repeat the same middle segment).
    COMPILE_CACHE_SIZE = 64

    def __init__(self, *, pins: PinMap | None = None, clock: Clock | None = None,
                 host: str = "localhost", port: int = 8888,
                 max_ma: Sequence[float] | None = None, use_button: bool = True,
                 socket_timeout_s: float = SOCKET_TIMEOUT_S) -> None:
        self.pins = pins or load_pin_map()
        self.clock = clock or RealClock()
        self.host, self.port = host, port
        self.on_estop: Callable[[], None] | None = None
        self._lock = threading.RLock()
        if max_ma is None:
            max_ma = (0.0, 0.0)
        #: what it was built with: `set_max_ma` lowers under it, never above
        self._max_ma_built = tuple(self._clean_max_ma(c) for c in (list(max_ma) + [0.0, 0.0])[:2])
        self._max_ma = self._max_ma_built
        self._ma = [0.0, 0.0]
        self._hb = 0
        self._faulted: BaseException | None = None
        self._closed = False
        self._armed: CompiledCycle | None = None
        self._compiled: dict[CycleSpec, CompiledCycle] = {}
        self._created_key: tuple | None = None
        self._wave_ids: list[int] = []
        self._prepared: tuple[tuple, list[int]] | None = None  # created alongside, not yet playing
        self._cbs_used = 0
        self._ools_used = 0
        self._ids_used = 0
        self._playing: CompiledCycle | None = None
        self._started_at: float | None = None
        # clock times just before and just after the playing chain was sent: its DMA
        # started in between (+ CHAIN_START_DELAY_US); equal in virtual time
        self._sent_between: tuple[float, float] | None = None
        self._verified: set[tuple] = set()
        self._button = None
        self._factory = None
        self._dac = self._adc = None
        self._link_dead = False
        self._enabled = False
        self._emergency_failed = False
        self._socket_timeout_s = socket_timeout_s

        pigpio.exceptions = True
        pi = pigpio.pi(host, port, show_errors=False)
        if not pi.connected:
            raise ConnectionLost(f"cannot connect to pigpiod at {host}:{port}")
        self._pi = pi
        self._sock = _CountingSocket(pi.sl.s)
        pi.sl.s = self._sock
        try:
            self._sock.settimeout(socket_timeout_s)
            with self._lock:
                # A board pigpio cannot time (a Pi 5, say) is refused before any line moves.
                self.board_name = check_supported(self._call(pi.get_hardware_revision))
                # The stop sequence before anything else: enable low, then the wave a crashed
                # client may have left playing is stopped (it would drive the legs again),
                # then the legs and the heartbeat low.
                p = self.pins
                self._call(pi.write, p.enable, 0)
                self._call(pi.set_mode, p.enable, pigpio.OUTPUT)
                self._call(pi.wave_tx_stop)
                for gpio in (p.ch0_a, p.ch0_b, p.ch1_a, p.ch1_b, p.heartbeat):
                    self._call(pi.write, gpio, 0)
                    self._call(pi.set_mode, gpio, pigpio.OUTPUT)
                self._call(pi.wave_clear)
                self._dac = self._call(pi.spi_open, p.channel_dac, p.spi_baud, 0)
                self._adc = self._call(pi.spi_open, p.channel_adc, p.spi_baud, 0)
                self._dac_zero()
            if use_button:
                self._open_button()
        except BaseException:
            self._release()
            raise

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _clean_max_ma(c: float) -> float:
        """A channel's `max_ma` as the driver keeps it: a number from 0 to the device limit.
        The one place the device's amplitude limit is applied on this side (the validator
        refuses a prescription above it); every set-point is held under it."""
        try:
            c = float(c)
        except (TypeError, ValueError):
            return 0.0
        if not math.isfinite(c) or c < 0:
            return 0.0
        return min(c, DEVICE_LIMITS["max_ma"].high)

    def _open_button(self) -> None:
        # A DigitalInputDevice, not a Button: a Button's hold thread (which this driver
        # never uses) is dropped by its close while an edge may still be on its way into
        # it, and it makes every close wait up to a second for that thread.
        from gpiozero import DigitalInputDevice
        from gpiozero.pins.pigpio import PiGPIOFactory

        self._factory = PiGPIOFactory(host=self.host, port=self.port)
        try:  # its calls must not hang on a silent pigpiod either
            self._factory.connection.sl.s.settimeout(self._socket_timeout_s)
        except (AttributeError, OSError):
            pass
        self._button = DigitalInputDevice(self.pins.estop, pull_up=True,
                                          pin_factory=self._factory)
        self._button.when_activated = self._estop_pressed_cb

    def _estop_pressed_cb(self, *_args) -> None:
        """pigpio's notification thread (through gpiozero): the e-stop went down.
        Cut everything, then tell the app. Nothing escapes into that thread: an edge that
        races the driver's close finds it closed and does nothing; a failure of the app's
        handler is logged (the board has cut the output in hardware whatever happens)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._safe_stop()
            except HwError:
                pass
        cb = self.on_estop
        if cb is None or self._closed:
            return
        try:
            cb()
        except Exception as e:  # noqa: BLE001 - the notification thread must live on
            log.error("the app's e-stop handler failed: %r", e)

    def _call(self, fn, *args):
        """One pigpio call under the lock; any failure is a fault (safe stop, then raise)."""
        with self._lock:
            if self._closed:
                raise NotArmed("the driver is closed")
            if self._link_dead:
                fault: BoardFault = ConnectionLost(f"pigpiod at {self.host}:{self.port} was lost")
                self._fault(fault)
                raise fault
            try:
                return fn(*args)
            except pigpio.error as e:
                code = _ERROR_CODES.get(getattr(e, "value", str(e)), 0)
                fault = PigpioError(getattr(fn, "__name__", "pigpio"), code,
                                    L.ERROR_NAMES.get(code, str(e)))
                cause: BaseException = e
            except _LINK_ERRORS as e:
                self._kill_link()
                fault = ConnectionLost(f"pigpiod at {self.host}:{self.port} lost: {e!r}")
                cause = e
            self._fault(fault)
            raise fault from cause

    def _kill_link(self) -> None:
        """The command socket cannot be trusted any more (closed, or a reply is overdue and
        would answer the next command): close it so nothing else is sent on it."""
        self._link_dead = True
        try:
            self._sock._sock.close()
        except OSError:
            pass

    def _fault(self, fault: BaseException) -> None:
        if self._faulted is None:
            self._faulted = fault
        try:
            self._safe_stop()
        except HwError:
            pass

    def _dac_word(self, channel: int, code: int) -> bytes:
        word = (_DAC_CHANNEL_B if channel else 0) | (_DAC_ACTIVE | code if code else 0)
        return bytes((word >> 8, word & 0xFF))

    def _dac_zero(self) -> None:
        for ch in (0, 1):
            self._call(self._pi.spi_write, self._dac, self._dac_word(ch, 0))
            self._ma[ch] = 0.0

    # ------------------------------------------------------------------ safe stop
    def _stop_steps(self) -> list[tuple[str, str, tuple]]:
        p = self.pins
        steps = [("enable low", "write", (p.enable, 0)),
                 ("wave_tx_stop", "wave_tx_stop", ()),
                 *[(f"gpio {g} low", "write", (g, 0)) for g in (p.ch0_a, p.ch0_b, p.ch1_a, p.ch1_b)]]
        if self._dac is not None:
            steps += [(f"DAC channel {ch} to zero", "spi_write", (self._dac, self._dac_word(ch, 0)))
                      for ch in (0, 1)]
        return steps

    def _safe_stop(self) -> None:
        """Enable low, stop the wave, legs low, DAC to zero: every step tried; raises
        BoardFault (ConnectionLost when pigpiod is unreachable) naming the failed steps.

        On a lost or silent connection the steps go over a fresh emergency connection
        (raw pigpiod protocol, one socket timeout for all of them); if that fails too,
        later stops fail at once — the board's heartbeat watchdog, no longer fed, cuts
        the output within 250 ms whatever happens here."""
        with self._lock:
            failed: list[str] = []
            lost = False
            self._enabled = False
            steps = self._stop_steps()
            if not self._link_dead:
                for i, (name, op, args) in enumerate(steps):
                    try:
                        getattr(self._pi, op)(*args)
                    except _LINK_ERRORS as e:
                        self._kill_link()
                        failed.append(f"{name}: {e!r}")
                        break
                    except Exception as e:  # noqa: BLE001 - every step must be tried
                        failed.append(f"{name}: {e!r}")
            if self._link_dead:
                lost = True
                failed = self._emergency_stop(steps)
                failed.insert(0, "pigpiod connection lost" + (
                    "" if len(failed) else " (output stopped over an emergency connection)"))
            self._ma = [0.0, 0.0]
            self._playing = None
            self._started_at = None
            self._sent_between = None
            if failed:
                if self._faulted is None:
                    self._faulted = BoardFault("safe stop failed")
                kind = ConnectionLost if lost else BoardFault
                raise kind("safe stop incomplete: " + "; ".join(failed))

    def _emergency_stop(self, steps) -> list[str]:
        """The stop steps over a new raw connection; returns the failed steps."""
        if self._emergency_failed:
            return [f"{name}: not attempted (pigpiod did not answer the emergency stop)"
                    for name, _, _ in steps]
        deadline = time.monotonic() + self._socket_timeout_s
        failed = []
        try:
            link = _RawLink(self.host, self.port, deadline)
        except OSError as e:
            self._emergency_failed = True
            return [f"{name}: no connection ({e!r})" for name, _, _ in steps]
        try:
            for k, (name, op, args) in enumerate(steps):
                try:
                    link.call(op, *args)
                except OSError as e:  # silent or gone: the rest cannot succeed either
                    self._emergency_failed = True
                    failed += [f"{n}: {e!r}" for n, _, _ in steps[k:]]
                    break
                except BoardFault as e:
                    failed.append(f"{name}: {e}")
        finally:
            link.close()
        return failed

    # ------------------------------------------------------------------ waves
    def _verify(self, cycle: CompiledCycle) -> None:
        """The compiled waves obey the pulse rules whatever produced them."""
        spec = cycle.spec
        max_w = min(int(DEVICE_LIMITS["pulse_us"].high), int(math.floor(spec.pulse_us + 0.5)))
        legs = [(1 << a, 1 << b) for a, b in self.pins.legs[:spec.channels]]
        allowed = 0
        for a, b in legs:
            allowed |= a | b
        for wave in cycle.waves:
            key = (wave.pulses, max_w, allowed)
            if key in self._verified:
                continue
            level = 0
            t = 0
            leg_bits = [bit for pair in legs for bit in pair]
            since = dict.fromkeys(leg_bits, -1)
            widths: dict[int, list[int]] = {bit: [] for bit in leg_bits}
            both = [a | b for a, b in legs]
            for on, off, delay in wave.pulses:
                if (on | off) & ~allowed or delay < 0:
                    raise WaveformError("a wave drives a line that is not a leg of an armed "
                                        "channel, or has a negative delay")
                changed = (on | off)
                if changed:
                    new = (level | on) & ~off
                    for bit in leg_bits:
                        if changed & bit:
                            if level & bit and not new & bit:
                                widths[bit].append(t - since[bit])
                            elif new & bit and not level & bit:
                                since[bit] = t
                    level = new
                    for m in both:
                        if level & m == m:
                            raise WaveformError("a wave drives both legs of a channel high")
                t += delay
            if level:
                raise WaveformError("a wave ends with a leg high")
            for a, b in legs:
                wa, wb = widths[a], widths[b]
                if wa != wb:
                    raise WaveformError("a wave's phases are not balanced")
                if wa and max(wa) > max_w:
                    raise WaveformError(f"a wave holds a leg high {max(wa)} µs > {max_w} µs")
            self._verified.add(key)

    def _create(self, cycle: CompiledCycle) -> list[int]:
        ids = []
        pi = self._pi
        self._call(pi.wave_add_new)
        for wave in cycle.waves:
            self._call(self._wave_add_generic, _pack(wave.pulses))
            ids.append(self._call(pi.wave_create))
        self._cbs_used += cycle.wave_cbs
        self._ools_used += cycle.wave_ools
        self._ids_used += len(cycle.waves)
        return ids

    def _wave_add_generic(self, packed: bytes) -> int:
        """pigpio's `wave_add_generic` with the pulses already packed (its message is
        exactly this: 12 bytes per pulse, gpio_on, gpio_off, delay as native uint32)."""
        return pigpio._u2i(pigpio._pigpio_command_ext(
            self._pi.sl, pigpio._PI_CMD_WVAG, 0, 0, len(packed), [packed]))

    def _clear_waves(self) -> None:
        self._call(self._pi.wave_clear)
        self._created_key = None
        self._wave_ids = []
        self._prepared = None
        self._cbs_used = self._ools_used = self._ids_used = 0

    def _fits_alongside(self, cycle: CompiledCycle) -> bool:
        return (self._cbs_used + cycle.wave_cbs <= L.WAVE_CB_BUDGET
                and self._ools_used + cycle.wave_ools <= L.WAVE_OOL_BUDGET
                and self._ids_used + len(cycle.waves) <= L.PI_MAX_WAVES)

    def _check_usable(self) -> None:
        if self._closed:
            raise NotArmed("the driver is closed")
        if self._faulted is not None:
            raise BoardFault(f"the board faulted earlier ({self._faulted}); not restarting")

    # ------------------------------------------------------------------ public API
    @property
    def watchdog_ms(self) -> int:
        """The board's heartbeat watchdog (from the pin map): no edge this long cuts the output."""
        return int(self.pins.watchdog_ms)

    def compile(self, spec: CycleSpec) -> CompiledCycle:
        """`spec` compiled for this board's legs (each spec once; the oldest of more than
        COMPILE_CACHE_SIZE is forgotten). Raises `WaveformError` when it cannot be played."""
        cycle = self._compiled.get(spec)
        if cycle is None:
            cycle = compile_cycle(spec, self.pins)
            if len(self._compiled) >= self.COMPILE_CACHE_SIZE:
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[spec] = cycle
        return cycle

    def arm(self, cycle: CycleSpec | CompiledCycle) -> None:
        """Make `cycle` the next to play (a `CycleSpec` is compiled first, see `compile`):
        its waves are checked and created now when possible (reused when the same waves
        are already there; created alongside the playing cycle when they fit; otherwise
        at `start()`). Never starts anything."""
        if isinstance(cycle, CycleSpec):
            cycle = self.compile(cycle)
        if not isinstance(cycle, CompiledCycle):
            raise TypeError(f"arm() takes a CycleSpec or a CompiledCycle, not {type(cycle).__name__}")
        with self._lock:
            self._check_usable()
            self._verify(cycle)
            key = cycle.key
            self._armed = cycle
            if key == self._created_key:
                return
            if self._prepared is not None and self._prepared[0] == key:
                return
            if not self.busy():
                self._clear_waves()
                self._wave_ids = self._create(cycle)
                self._created_key = key
            elif self._fits_alongside(cycle):
                self._prepared = (key, self._create(cycle))
            # else: no room beside the playing waves; start() creates them once it has ended

    def start(self) -> None:
        """Enable the output and send the armed cycle's chain (one cycle, then it ends).

        Called while the previous cycle still plays: allowed only once that cycle's last
        pulse is over (its chain then ends in the rest); earlier, it is a fault."""
        with self._lock:
            self._check_usable()
            cycle = self._armed
            if cycle is None:
                raise NotArmed("start() with no cycle armed")
            if self.estop_pressed():
                self._safe_stop()
                raise BoardFault("the e-stop is pressed")
            pi = self._pi
            key = cycle.key
            prepared = self._prepared is not None and self._prepared[0] == key
            reuse = key == self._created_key or prepared   # its waves exist in pigpiod
            if self.busy():
                if not self._past_last_pulse():
                    self._fault(BoardFault("start() while a contraction was playing"))
                    raise BoardFault("start() while a contraction was playing: output stopped")
                # Only the rest is left (every leg low): wave_chain below replaces it.
                if not reuse:
                    self._call(pi.wave_tx_stop)  # its waves are about to be cleared
            if key != self._created_key:
                if prepared:
                    self._created_key, self._wave_ids = key, self._prepared[1]
                    self._prepared = None
                else:
                    self._clear_waves()
                    self._wave_ids = self._create(cycle)
                    self._created_key = key
            chain = cycle.chain_bytes(self._wave_ids)
            self.heartbeat()  # a fresh edge: the watchdog lets the first pulse through
            if not self._enabled:
                self._call(pi.write, self.pins.enable, 1)
                self._enabled = True
            sent_from = self.clock.now()
            self._call(pi.wave_chain, chain)
            self._playing = cycle
            self._started_at = self.clock.now()
            self._sent_between = (sent_from, self._started_at)

    def _past_last_pulse(self) -> bool:
        cycle, t0 = self._playing, self._started_at
        if cycle is None or t0 is None:
            return True
        last_edge = 0
        for ch, windows in enumerate(cycle.contractions):
            for (w0, _w1) in windows:
                widths = cycle.widths[ch]
                k = len(widths) - 1
                last_edge = max(last_edge, w0 + cycle.grid.t(k) + 2 * widths[k] + cycle.gap_us)
        elapsed_us = (self.clock.now() - t0) * 1e6
        return elapsed_us >= last_edge + L.CHAIN_START_DELAY_US

    def busy(self) -> bool:
        """A wave or chain is playing."""
        return bool(self._call(self._pi.wave_tx_busy))

    def stop(self, *, balanced: bool = False) -> None:
        """The safe stop (also for pause): enable low, wave stopped, legs low, DAC zero.

        `balanced` (the patient's own pause and stop, an electrode lost): a pulse under way
        finishes its second phase first, so that no pulse is left unbalanced; the stop
        follows at most one pulse (under 1 ms) later. Without it (the e-stop, the
        watchdog, a fault) the output is cut at once, wherever the pulse is."""
        with self._lock:
            if self._closed:
                return
            if balanced:
                self._let_pulse_finish()
            self._safe_stop()

    pause = stop

    def _let_pulse_finish(self, channels: Sequence[int] = (0, 1)) -> None:
        """Wait on the driver's clock until no pulse of `channels` can be under way when
        the next command reaches pigpiod.

        From the compiled pulse grid and when the playing chain was sent: the chain's
        DMA started somewhere between the clock times just before and just after
        `wave_chain` (one instant in virtual time; a socket round trip on a Pi). Every
        pulse that may be under way now, or may begin within one such round trip, is
        waited for to its end. The same on a real pigpiod as on the simulator."""
        cycle, sent = self._playing, self._sent_between
        if cycle is None or sent is None:
            return
        sent_from_us, sent_to_us = (round(t * 1_000_000) for t in sent)
        now_us = round(self.clock.now() * 1_000_000)
        round_trip_us = sent_to_us - sent_from_us
        start_delay = L.CHAIN_START_DELAY_US
        # µs since the cycle's first instant, at the earliest and at the latest
        earliest = now_us - sent_to_us - start_delay
        latest = now_us - sent_from_us - start_delay + round_trip_us
        end_us = _last_pulse_end(cycle, earliest, latest,
                                 [ch for ch in channels if ch < len(cycle.widths)])
        if end_us is not None:
            self._wait_on_clock((sent_to_us + start_delay + end_us) / 1_000_000)

    def _wait_on_clock(self, t: float) -> None:
        """Block until the driver's clock reaches `t` (BALANCED_WAIT_REAL_S at most).

        The sleep runs on a short-lived thread of its own: a virtual clock moves with
        whoever sleeps on it, and a held clock counts its sleepers as the threads it must
        wait for, which a caller's long-lived thread must not become."""
        if self.clock.now() >= t:
            return
        give_up = threading.Event()
        waiter = threading.Thread(target=self.clock.sleep_until, args=(t,),
                                  kwargs={"wake": give_up}, name="balanced-stop", daemon=True)
        waiter.start()
        waiter.join(BALANCED_WAIT_REAL_S)
        give_up.set()
        if waiter.is_alive():
            log.warning("the balanced stop's clock did not reach the end of the pulse; "
                        "stopping at once")

    @property
    def max_ma(self) -> tuple[float, float]:
        """Each channel's `max_ma` in force: no set-point goes above it."""
        return self._max_ma

    def set_max_ma(self, max_ma: Sequence[float]) -> tuple[float, float]:
        """Lower each channel's `max_ma` (never above what the driver was built with); a
        set-point above the new one is brought down at once. Returns those in force."""
        new = tuple(min(self._clean_max_ma(c), m)
                    for c, m in zip((list(max_ma) + [0.0, 0.0])[:2], self._max_ma_built))
        with self._lock:
            self._max_ma = new  # type: ignore[assignment]
            for ch in (0, 1):
                if self._ma[ch] > new[ch]:
                    self.set_amplitude(ch, new[ch])
        return self._max_ma

    def set_amplitude(self, channel: int, ma: float, *, balanced: bool = False) -> float:
        """Set channel's current; clamped to [0, min(max_ma, device limit, DAC full scale)]
        and quantised down to the DAC's step. Returns the mA actually set.

        `balanced` (an electrode lost): a pulse of that channel under way finishes its
        second phase at the old current first (see `stop`)."""
        if channel not in (0, 1):
            raise ValueError(f"channel {channel!r} is not 0 or 1")
        try:
            ma = float(ma)
        except (TypeError, ValueError):
            ma = 0.0
        if not math.isfinite(ma) or ma < 0:
            ma = 0.0
        full = float(self.pins.dac_full_scale_ma)
        with self._lock:
            self._check_usable()
            if balanced:
                self._let_pulse_finish((channel,))
            limit = min(self._max_ma[channel], full)  # max_ma holds the device limit already
            ma = min(ma, limit)
            code = min(_DAC_MAX_CODE, int(math.floor(ma * 4096 / full + 1e-9)))
            while code and code * full / 4096 > limit:
                code -= 1
            self._call(self._pi.spi_write, self._dac, self._dac_word(channel, code))
            self._ma[channel] = code * full / 4096
            return self._ma[channel]

    def amplitude(self, channel: int) -> float:
        return self._ma[channel]

    def heartbeat(self) -> None:
        """Toggle the heartbeat line (the board's watchdog wants an edge every < 250 ms)."""
        with self._lock:
            self._hb ^= 1
            self._call(self._pi.write, self.pins.heartbeat, self._hb)

    def contact(self, channel: int) -> bool:
        """Electrode contact on `channel` (MCP3008 input N >= 300 counts)."""
        if channel not in (0, 1):
            raise ValueError(f"channel {channel!r} is not 0 or 1")
        _, rx = self._call(self._pi.spi_xfer, self._adc, [0x01, 0x80 | (channel << 4), 0x00])
        if len(rx) < 3:
            self._fault(ConnectionLost("short MCP3008 reply"))
            raise ConnectionLost("short MCP3008 reply")
        return (((rx[1] & 3) << 8) | rx[2]) >= CONTACT_THRESHOLD

    def estop_pressed(self) -> bool:
        """The e-stop input is low (pressed)."""
        return self._call(self._pi.read, self.pins.estop) == 0

    @property
    def faulted(self) -> BaseException | None:
        return self._faulted

    @property
    def socket_bytes(self) -> tuple[int, int]:
        """(sent, received) on the pigpio command socket since the driver was built."""
        return self._sock.sent, self._sock.received

    def close(self) -> None:
        """Safe stop, then release the waves, SPI handles, the e-stop button and the
        connection. Idempotent. Raises BoardFault if the safe stop failed."""
        with self._lock:
            if self._closed:
                return
            error: BaseException | None = None
            try:
                self._safe_stop()
            except HwError as e:
                error = e
            self._release_board()
        # Outside the lock: an e-stop callback in flight may be waiting for it.
        self._release_links()
        if error is not None:
            raise error

    def _release(self) -> None:
        with self._lock:
            self._release_board()
        self._release_links()

    def _release_board(self) -> None:
        """The waves and SPI handles; from now on the driver is closed. Hold the lock."""
        pi = getattr(self, "_pi", None)
        for fn, args in ((getattr(pi, "wave_clear", None), ()),
                         (getattr(pi, "spi_close", None), (self._adc,)),
                         (getattr(pi, "spi_close", None), (self._dac,))):
            if fn is None or None in args:
                continue
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - releasing what can be released
                pass
        self._closed = True

    def _release_links(self) -> None:
        """The e-stop button and both pigpio connections. Not under the lock."""
        pi = getattr(self, "_pi", None)
        factory_pi = getattr(self._factory, "_connection", None)
        quiet = self._quiesce_button(factory_pi)
        if self._button is not None and not self._link_dead:
            with contextlib.suppress(Exception):
                self._button.pin.when_changed = None
        for obj in (self._button, self._factory) if quiet else (self._factory,):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # noqa: BLE001 - a dead connection: forget the pin
                if hasattr(obj, "_pin"):
                    obj._pin = None  # so gpiozero's __del__ does not retry on a dead socket
        # Both pigpio connections stopped, whatever failed above: a pigpio notification
        # thread whose socket has been closed by the other end spins on recv() at full CPU
        # until its connection is stopped (the factory's close stops it only on success).
        for conn in (factory_pi, pi):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.stop()

    def _quiesce_button(self, factory_pi) -> bool:
        """Stop pigpio's notification thread of the e-stop's connection and wait until any
        e-stop callback in flight has returned. True when none can run any more.

        A callback still running when its device closes (the app's e-stop handler waiting
        for the engine, say) returns into gpiozero objects that close has taken apart: a
        traceback in the notification thread. Only a thread that no longer delivers edges
        makes closing the input safe. pigpio stops that thread with a command whose reply
        wakes its recv(), from pigpiod as from the simulator. If a callback does not return
        in time (or this is that thread), the input is left to the process's end."""
        notify = getattr(factory_pi, "_notify", None)  # pigpio's _callback_thread, if any
        if notify is None:
            return True
        with contextlib.suppress(Exception):
            notify.stop()  # no more edges are handled after the one in hand
        if notify is threading.current_thread():
            return False
        notify.join(self._socket_timeout_s)
        if notify.is_alive():
            log.warning("an e-stop callback was still running when the driver closed")
            return False
        return True

    def __enter__(self) -> "Stimulator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self.close()
        except Exception:  # noqa: BLE001
            pass


def _last_pulse_end(cycle: CompiledCycle, earliest_us: int, latest_us: int,
                    channels: Sequence[int]) -> int | None:
    """The latest end (µs from the cycle's start, after the second phase) of a pulse of
    `channels` under way at some instant in [earliest_us, latest_us]; None if none is."""
    grid, gap = cycle.grid, cycle.gap_us
    end: int | None = None
    for ch in channels:
        widths = cycle.widths[ch]
        for w0, _w1 in cycle.contractions[ch]:
            # the last pulse that starts by `latest_us`, then back while they still run
            k = bisect.bisect_right(range(len(widths)), latest_us - w0, key=grid.t) - 1
            while k >= 0:
                pulse_end = w0 + grid.t(k) + 2 * widths[k] + gap
                if pulse_end <= earliest_us:
                    break
                end = pulse_end if end is None else max(end, pulse_end)
                k -= 1
    return end


def _pack(pulses) -> bytes:
    return array("I", itertools.chain.from_iterable(pulses)).tobytes()


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low
        mask ^= low


def install_sigterm_handler(stim: Stimulator, *, exit_code: int = 128 + signal.SIGTERM):
    """On SIGTERM: the stop sequence, then exit. Returns the previous handler.

    The handler runs in the main thread wherever it was interrupted, possibly inside a
    pigpio call that holds the client's socket lock (a plain Lock): stopping over that
    connection would wait on it forever. The steps go over the driver's own emergency
    connection, which takes no lock; the exit then unwinds the interrupted call, and
    whatever `with` or `finally` encloses it closes the driver as usual."""

    def handler(signum, frame):
        try:
            failed = stim._emergency_stop(stim._stop_steps())
            if failed:
                log.error("safe stop on SIGTERM incomplete: %s", "; ".join(failed))
        finally:
            sys.exit(exit_code)

    return signal.signal(signal.SIGTERM, handler)
