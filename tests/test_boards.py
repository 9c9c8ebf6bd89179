"""The board revisions the driver accepts (hw.boards)."""
from __future__ import annotations

import pytest

from hw.boards import check_supported
from hw.exc import UnsupportedBoard


@pytest.mark.parametrize("revision, name", [
    (0xC03111, "Raspberry Pi 4 Model B"), (0xB03115, "Raspberry Pi 4 Model B"),
    (0xA020D3, "Raspberry Pi 3 Model B+"), (0x902120, "Raspberry Pi Zero 2 W"),
    (0xB03140, "Compute Module 4"),
])
def test_the_supported_boards_are_accepted(revision, name):
    assert check_supported(revision) == name


@pytest.mark.parametrize("revision, fragment", [
    (0xC04170, "Raspberry Pi 5 (pigpio cannot time its RP1 GPIO)"),
    (0xD04180, "Compute Module 5"), (0xD04190, "Raspberry Pi 500"),
    (0xC03130, "Raspberry Pi 400"), (0x000E, "old-style board"), (0xA02082, "board type 0x08"),
])
def test_every_other_board_is_refused_naming_what_is_allowed(revision, fragment):
    with pytest.raises(UnsupportedBoard) as e:
        check_supported(revision)
    assert fragment in str(e.value)
    assert "Raspberry Pi 4 Model B" in str(e.value)
