"""pigpiod's socket protocol: 16-byte requests and replies, and the command table.

A request is four little-endian uint32 `cmd, p1, p2, p3`; when p3 is not zero it is the
length of an extension that follows (pulses for WVAG, the script for WVCHA, SPI data...).
The reply echoes `cmd, p1, p2` and puts the result in the fourth word, a signed int32:
negative is one of pigpio's error codes. SPIX and SPIR follow a positive reply with that
many data bytes. NOIB turns the connection into a notification stream of 12-byte reports
`H seqno, H flags, I tick, I level` (handled by the server). An extension of 65,536 bytes
or more makes pigpiod drop the connection without a reply.
"""
from __future__ import annotations

import struct
import sys
import traceback
from typing import Callable

from hw import pigpio_limits as L

from .board import HW_REVISION, PIGPIO_VERSION, SimBoard
from .waves import PigpioError

REQUEST = struct.Struct("<IIII")
REPLY = struct.Struct("<IIIi")
REPORT = struct.Struct("<HHII")

# pigpio command numbers (pigpio.h, PI_CMD_*)
MODES, MODEG, PUD, READ, WRITE = 0, 1, 2, 3, 4
BR1, TICK, HWVER, NB, NC = 10, 16, 17, 19, 21
PIGPV, WVCLR, WVAG, WVBSY, WVHLT, WVSM, WVSP, WVSC = 26, 27, 28, 32, 33, 34, 35, 36
WVCRE, WVDEL, WVTX, WVTXR, WVNEW = 49, 50, 51, 52, 53
SPIO, SPIC, SPIR, SPIW, SPIX = 71, 72, 73, 74, 75
WVCHA, FG, NOIB, WVTXM, WVTAT, WVCAP = 93, 97, 99, 100, 101, 118

#: Commands whose positive result is followed by that many bytes of data.
REPLY_WITH_DATA = frozenset({SPIR, SPIX})

Handler = Callable[[SimBoard, int, int, bytes], "int | tuple[int, bytes]"]


def _to_i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _wvag(b: SimBoard, p1: int, p2: int, ext: bytes) -> int:
    pulses = list(struct.iter_unpack("<III", ext[: len(ext) // 12 * 12]))
    return b.wave_add_generic(pulses)


def _wvcap(b: SimBoard, p1: int, p2: int, ext: bytes) -> int:
    # pigpiod's variadic WVCAP: (pctCB, pctBOOL[, pctTOOL]) or one percent for both
    if len(ext) == 4:
        tool = struct.unpack("<I", ext)[0]
        if tool > 100:
            raise PigpioError(L.PI_BAD_PARAM)
        return b.wave_create((p1, p2))
    if p2 and not ext:
        return b.wave_create((p1, p2))
    if not p2 and not ext:
        return b.wave_create((p1, p1))
    return L.PI_BAD_WAVE_ID


def _spio(b: SimBoard, p1: int, p2: int, ext: bytes) -> int:
    flags = struct.unpack("<I", ext[:4])[0] if len(ext) >= 4 else 0
    return b.spi_open(p1, p2, flags)


def _spix(b: SimBoard, p1: int, p2: int, ext: bytes) -> tuple[int, bytes]:
    rx = b.spi_xfer(p1, ext)
    return len(rx), rx


def _spir(b: SimBoard, p1: int, p2: int, ext: bytes) -> tuple[int, bytes]:
    rx = b.spi_xfer(p1, bytes(p2))
    return len(rx), rx


def _spiw(b: SimBoard, p1: int, p2: int, ext: bytes) -> int:
    return len(b.spi_xfer(p1, ext))


COMMANDS: dict[int, Handler] = {
    MODES: lambda b, p1, p2, e: b.set_mode(p1, p2),
    MODEG: lambda b, p1, p2, e: b.get_mode(p1),
    PUD: lambda b, p1, p2, e: b.set_pull(p1, p2),
    READ: lambda b, p1, p2, e: b.read(p1),
    WRITE: lambda b, p1, p2, e: b.write(p1, p2),
    BR1: lambda b, p1, p2, e: b.read_bank1(),
    TICK: lambda b, p1, p2, e: b.tick(),
    HWVER: lambda b, p1, p2, e: HW_REVISION,
    PIGPV: lambda b, p1, p2, e: PIGPIO_VERSION,
    NB: lambda b, p1, p2, e: b.notify_begin(p1, p2),
    NC: lambda b, p1, p2, e: b.notify_close(p1),
    FG: lambda b, p1, p2, e: b.glitch_filter(p1, p2),
    WVCLR: lambda b, p1, p2, e: b.wave_clear(),
    WVNEW: lambda b, p1, p2, e: b.wave_add_new(),
    WVAG: _wvag,
    WVCRE: lambda b, p1, p2, e: b.wave_create(),
    WVCAP: _wvcap,
    WVDEL: lambda b, p1, p2, e: b.wave_delete(p1),
    WVTX: lambda b, p1, p2, e: b.wave_send(p1, L.PI_WAVE_MODE_ONE_SHOT),
    WVTXR: lambda b, p1, p2, e: b.wave_send(p1, L.PI_WAVE_MODE_REPEAT),
    WVTXM: lambda b, p1, p2, e: b.wave_send(p1, p2),
    WVCHA: lambda b, p1, p2, e: b.wave_chain(e),
    WVBSY: lambda b, p1, p2, e: b.wave_tx_busy(),
    WVHLT: lambda b, p1, p2, e: b.wave_tx_stop(),
    WVTAT: lambda b, p1, p2, e: b.wave_tx_at(),
    WVSM: lambda b, p1, p2, e: b.wave_stat("micros", p1),
    WVSP: lambda b, p1, p2, e: b.wave_stat("pulses", p1),
    WVSC: lambda b, p1, p2, e: b.wave_stat("cbs", p1),
    SPIO: _spio,
    SPIC: lambda b, p1, p2, e: b.spi_close(p1),
    SPIX: _spix,
    SPIR: _spir,
    SPIW: _spiw,
}


def execute(board: SimBoard, cmd: int, p1: int, p2: int, ext: bytes) -> bytes:
    """Run one request against the board; the complete reply (header + any data)."""
    handler = COMMANDS.get(cmd)
    data = b""
    if handler is None:
        res = L.PI_UNKNOWN_COMMAND
    else:
        try:
            out = handler(board, p1, p2, ext)
        except PigpioError as e:
            out = e.code
        except Exception:  # a simulator bug must not hang the client: say so, answer an error
            traceback.print_exc(file=sys.stderr)
            out = L.PI_UNKNOWN_COMMAND
        if isinstance(out, tuple):
            res, data = out
        else:
            res = out
    res = _to_i32(res)
    return REPLY.pack(cmd, p1, p2, res) + (data if res > 0 and cmd in REPLY_WITH_DATA else b"")
