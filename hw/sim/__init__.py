"""The simulated board: a pigpiod that speaks the real protocol, with the reference
stimulation board attached (see hw/BOARD.md). Tests, CI and the app's default mode use it.

    board = SimBoard(pins=pin_map, clock=clock)
    server = SimServer(board, host="127.0.0.1", port=0); server.start()
    pi = pigpio.pi("127.0.0.1", server.port)
"""
from .board import SimBoard
from .server import SimServer
from .trace import Pulse, Trace

__all__ = ["SimBoard", "SimServer", "Trace", "Pulse"]
