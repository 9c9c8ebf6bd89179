"""Which Raspberry Pi boards the stimulator may run on, from the revision code pigpiod reports.

pigpio times every pulse with the BCM283x/BCM2711 DMA engine. The Raspberry Pi 5 family
puts its GPIO behind the RP1 chip, which pigpio cannot drive: on such a board the pulse
timing would have no guarantee at all, so the driver refuses it before touching a line.
Only the boards the product is validated on are accepted (design.md).
"""
from __future__ import annotations

from .exc import UnsupportedBoard

#: New-style revision codes: bit 23 set, board type in bits 4-11 (Raspberry Pi docs,
#: "Raspberry Pi revision codes").
SUPPORTED_TYPES: dict[int, str] = {
    0x0D: "Raspberry Pi 3 Model B+",
    0x11: "Raspberry Pi 4 Model B",
    0x12: "Raspberry Pi Zero 2 W",
    0x14: "Compute Module 4",
}
KNOWN_UNSUPPORTED: dict[int, str] = {
    0x13: "Raspberry Pi 400",
    0x15: "Compute Module 4S",
    0x17: "Raspberry Pi 5",
    0x18: "Compute Module 5",
    0x19: "Raspberry Pi 500",
    0x1A: "Compute Module 5 Lite",
}


def board_name(revision: int) -> str:
    """The board a revision code names, for messages."""
    if not revision & (1 << 23):
        return f"an old-style board (revision 0x{revision:x})"
    kind = (revision >> 4) & 0xFF
    return SUPPORTED_TYPES.get(kind) or KNOWN_UNSUPPORTED.get(kind) or f"board type 0x{kind:02x}"


def check_supported(revision: int) -> str:
    """The supported board's name, or UnsupportedBoard saying which boards are allowed."""
    kind = (revision >> 4) & 0xFF
    if revision & (1 << 23) and kind in SUPPORTED_TYPES:
        return SUPPORTED_TYPES[kind]
    allowed = ", ".join(SUPPORTED_TYPES.values())
    extra = " (pigpio cannot time its RP1 GPIO)" if kind in (0x17, 0x18, 0x19, 0x1A) else ""
    raise UnsupportedBoard(f"this is {board_name(revision)}{extra}: the stimulator runs only on "
                           f"{allowed}")
