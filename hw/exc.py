"""The exception hierarchy of the hardware layer, after gpiozero's `exc.py`.

Every error that means "the output may not be safe" derives from `BoardFault`; the engine
treats any of them as a reason to abort the session with a fault, never to retry.
The two errors that cross the engine's seam derive from `homeapp.ports`' neutral bases,
so the engine catches them without importing `hw/`.
"""
from homeapp import ports


class HwError(Exception):
    """Base of every error raised by `hw`."""


class PinMapError(HwError, ValueError):
    """The pin map is wrong: an unknown line, a line used twice, a value out of range."""


class WaveformError(HwError, ports.ProgramError):
    """A cycle cannot be compiled (parameters outside the device limits, or a cycle that
    would not fit pigpio's limits)."""


class BoardFault(HwError, ports.BoardFault):
    """The board cannot be trusted to be safe: stop, report, do not retry."""


class ConnectionLost(BoardFault):
    """pigpiod stopped answering or the socket dropped."""


class PigpioError(BoardFault):
    """pigpiod answered a command with an error code."""

    def __init__(self, command: str, code: int, message: str = "") -> None:
        self.command = command
        self.code = code
        super().__init__(f"{command} failed with pigpio error {code}" + (f": {message}" if message else ""))


class NotArmed(HwError, RuntimeError):
    """start() without a cycle armed, or after the driver was closed."""


class UnsupportedBoard(HwError):
    """The Raspberry Pi pigpiod runs on is not one this device supports (a Pi 5, say)."""
