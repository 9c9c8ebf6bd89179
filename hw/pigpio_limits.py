"""pigpio's numeric limits and error codes, in one place for the waveform compiler, the
driver and the simulator (`hw/sim`), so that what the compiler checks is exactly what
pigpiod (real or simulated) will refuse.

The numbers are pigpio's (pigpio.h / pigpio.c, version 79), re-derived here by reading its
source; no pigpio code is copied. Where pigpio computes a cost (DMA control blocks for a
wave, control blocks for a chain) the pure functions below follow its arithmetic exactly.

How pigpio spends DMA control blocks (CBs) on a wave (`gpioWaveCreate`):
  1 CB for the 20 µs delay at the start of every wave,
  + 1 CB for each pulse that sets or clears any GPIO (`gpio_on | gpio_off != 0`),
  + the delay CBs of each pulse with a non-zero delay: 1 CB on the default DMA channel of
    every supported Pi (secondary channel 6, a full DMA engine); on a "DMA lite" channel
    (7 and above, chosen with pigpiod -d) one CB per 16,383 µs (`ceil(4*delay / 0xfffc)`).
The waves together may use `WAVE_CB_BUDGET` CBs and `WAVE_OOL_BUDGET` "OOL" words (one per
set mask and one per clear mask). CBs are allocated bottom-up: deleting a wave frees its
CBs only when it is the highest-numbered live wave (or a later wave of exactly the same
cost reuses its slot), so the driver should `wave_clear` (or delete in reverse order)
between cycles.
"""
from __future__ import annotations

from typing import Iterable, Protocol

# --- waves -------------------------------------------------------------------------------
PI_WAVE_BLOCKS = 4
#: Pulses in one wave (and in the wave being built: `wave_add_generic` merges into it).
PI_WAVE_MAX_PULSES = PI_WAVE_BLOCKS * 3000          # 12,000
#: Wave ids 0..249.
PI_MAX_WAVES = 250
#: Longest wave pigpio reports as its maximum (`wave_get_max_micros`), half an hour.
PI_WAVE_MAX_MICROS = 30 * 60 * 1_000_000

_PAGES_PER_BLOCK = 53
_CBS_PER_OPAGE = 118
_OOL_PER_OPAGE = 79
_PI_WAVE_COUNT_PAGES = 10  # pages reserved for chain counters and chain CBs

#: Every output-DMA control block pigpio allocates (what `wave_get_max_cbs` reports).
PI_WAVE_MAX_CBS = PI_WAVE_BLOCKS * _PAGES_PER_BLOCK * _CBS_PER_OPAGE            # 25,016
#: The CBs that waves may use together (the rest belong to chains): `PI_TOO_MANY_CBS` beyond.
WAVE_CB_BUDGET = PI_WAVE_MAX_CBS - _PI_WAVE_COUNT_PAGES * _CBS_PER_OPAGE         # 23,836
#: GPIO set/clear words that waves may use together: `PI_TOO_MANY_OOL` beyond.
WAVE_OOL_BUDGET = (PI_WAVE_BLOCKS * _PAGES_PER_BLOCK * _OOL_PER_OPAGE
                   - _PI_WAVE_COUNT_PAGES * _OOL_PER_OPAGE)                     # 15,958

#: Every wave started with `wave_send_*` (not from a chain) begins with this delay CB.
WAVE_START_DELAY_US = 20

#: DMA lite channels move at most 0xfffc bytes per CB; pigpio paces 4 bytes per µs.
_DMA_LITE_MAX_BYTES = 0xFFFC
_BYTES_PER_US = 4

# --- chains (`wave_chain`) ---------------------------------------------------------------
#: Control blocks a chain script may use (60 per counter page x 10 pages).
PI_CHAIN_MAX_CBS = 60 * _PI_WAVE_COUNT_PAGES                                     # 600
#: Loops with a count of 2 or more each need one counter; 2 per page x 10 pages.
PI_CHAIN_MAX_COUNTERS = 2 * _PI_WAVE_COUNT_PAGES                                 # 20
#: Loop nesting depth (pigpio's loop stack has 10 entries).
PI_CHAIN_MAX_NESTING = 10
#: Largest loop count (`255 1 x y`) and largest chain delay in µs (`255 2 x y`).
PI_MAX_WAVE_CYCLES = 65535
PI_MAX_WAVE_DELAY = 65535
#: A chain starts with a 20 µs delay CB, like a wave.
CHAIN_START_DELAY_US = 20

# --- wave modes (`wave_send_using_mode`) -------------------------------------------------
PI_WAVE_MODE_ONE_SHOT = 0
PI_WAVE_MODE_REPEAT = 1
PI_WAVE_MODE_ONE_SHOT_SYNC = 2
PI_WAVE_MODE_REPEAT_SYNC = 3

#: `wave_tx_at` answers (positive, not errors).
PI_WAVE_NOT_FOUND = 9998
PI_NO_TX_WAVE = 9999

# --- error codes (negative results; the pigpio client raises pigpio.error) ---------------
PI_INIT_FAILED = -1
PI_BAD_USER_GPIO = -2
PI_BAD_GPIO = -3
PI_BAD_MODE = -4
PI_BAD_LEVEL = -5
PI_BAD_PUD = -6
PI_BAD_WDOG_TIMEOUT = -15
PI_NO_HANDLE = -24
PI_BAD_HANDLE = -25
PI_BAD_WAVE_MODE = -33
PI_TOO_MANY_PULSES = -36
PI_NOT_PERMITTED = -41
PI_BAD_WVSC_COMMND = -43
PI_BAD_WVSM_COMMND = -44
PI_BAD_WVSP_COMMND = -45
PI_BAD_WAVE_ID = -66
PI_TOO_MANY_CBS = -67
PI_TOO_MANY_OOL = -68
PI_EMPTY_WAVEFORM = -69
PI_NO_WAVEFORM_ID = -70
PI_SPI_OPEN_FAILED = -73
PI_BAD_SPI_CHANNEL = -76
PI_BAD_FLAGS = -77
PI_BAD_SPI_SPEED = -78
PI_BAD_PARAM = -81
PI_BAD_SPI_COUNT = -84
PI_UNKNOWN_COMMAND = -88
PI_SPI_XFER_FAILED = -89
PI_BAD_POINTER = -90
PI_CHAIN_LOOP_CNT = -113
PI_BAD_CHAIN_LOOP = -114
PI_CHAIN_COUNTER = -115
PI_BAD_CHAIN_CMD = -116
PI_BAD_CHAIN_DELAY = -117
PI_CHAIN_NESTING = -118
PI_CHAIN_TOO_BIG = -119
PI_DEPRECATED = -120
PI_BAD_FOREVER = -124
PI_BAD_FILTER = -125

#: Human names for the codes above, for messages (`BoardFault`) and the simulator's log.
ERROR_NAMES: dict[int, str] = {v: k for k, v in dict(globals()).items()
                               if k.startswith("PI_") and isinstance(v, int) and v < 0}

# --- socket protocol -------------------------------------------------------------------
#: pigpiod drops the connection (no reply at all) when a request's extension is this long
#: or longer; so one `wave_add_generic` call carries at most 5,461 pulses (12 bytes each).
PI_CMD_MAX_EXTENSION = 1 << 16
PI_MAX_PULSES_PER_ADD = (PI_CMD_MAX_EXTENSION - 1) // 12                          # 5,461

#: Notification handles (NOIB / NO) pigpiod keeps at once.
PI_NOTIFY_SLOTS = 32

# --- SPI ---------------------------------------------------------------------------------
PI_SPI_MIN_BAUD = 32_000
PI_SPI_MAX_BAUD = 125_000_000
PI_SPI_SLOTS = 32
#: Largest transfer pigpiod accepts for spi_xfer/spi_write/spi_read (bytes).
PI_MAX_SPI_COUNT = 65536


class PulseLike(Protocol):
    """pigpio.pulse: a set mask, a clear mask and a delay in µs."""

    gpio_on: int
    gpio_off: int
    delay: int


def delay_cbs(delay_us: int, *, dma_lite: bool = False) -> int:
    """DMA control blocks pigpio spends on one delay of `delay_us` (0 costs nothing)."""
    if delay_us <= 0:
        return 0
    if not dma_lite:
        return 1
    nbytes = _BYTES_PER_US * delay_us
    return -(-nbytes // _DMA_LITE_MAX_BYTES)


def wave_cbs(pulses: Iterable[PulseLike | tuple[int, int, int]], *, dma_lite: bool = False) -> int:
    """Control blocks `wave_create` allocates for a wave made of `pulses` (already merged:
    the list `wave_add_generic` leaves, one entry per distinct time). Each item is a
    pigpio.pulse or a tuple `(gpio_on, gpio_off, delay_us)`.

    `dma_lite=False` is pigpiod's default on every supported Pi; True models `pigpiod -d 7+`
    and is the conservative choice for a budget check."""
    cbs = 1  # the start delay
    for p in pulses:
        on, off, delay = p if isinstance(p, tuple) else (p.gpio_on, p.gpio_off, p.delay)
        if on or off:
            cbs += 1
        if delay > 0:  # one control block per delay, more on a DMA-lite channel
            cbs += delay_cbs(delay, dma_lite=True) if dma_lite else 1
    return cbs


def wave_ools(pulses: Iterable[PulseLike | tuple[int, int, int]]) -> int:
    """GPIO set/clear words (`OOL`) `wave_create` allocates for `pulses`."""
    items = [p if isinstance(p, tuple) else (p.gpio_on, p.gpio_off, p.delay) for p in pulses]
    return sum(1 for on, _, _ in items if on) + sum(1 for _, off, _ in items if off)


def chain_cbs(chain: bytes | bytearray | Iterable[int], *, dma_lite: bool = False) -> int:
    """Chain control blocks pigpio needs for a (well-formed) `wave_chain` script; the
    chain is refused with PI_CHAIN_TOO_BIG when this exceeds `PI_CHAIN_MAX_CBS`.
    Counts: the start delay, one per wave,
    one per loop with count >= 2, the delay CBs of each delay, one per loop-forever, one at
    the end. The simulator checks the full grammar; this is the budget for a compiler."""
    buf = bytes(chain)
    cbs, i = 1, 0
    while i < len(buf):
        if buf[i] != 255:
            cbs += 1
            i += 1
            continue
        cmd = buf[i + 1] if i + 1 < len(buf) else -1
        if cmd == 0:
            i += 2
        elif cmd == 1:
            count = buf[i + 2] | (buf[i + 3] << 8) if i + 3 < len(buf) else 0
            cbs += 1 if count >= 2 else 0
            i += 4
        elif cmd == 2:
            delay = buf[i + 2] | (buf[i + 3] << 8) if i + 3 < len(buf) else 0
            cbs += delay_cbs(delay, dma_lite=dma_lite)
            i += 4
        elif cmd == 3:
            cbs += 1
            i += 2
        else:
            break
    return cbs + 1
