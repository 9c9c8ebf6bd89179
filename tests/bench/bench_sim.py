"""Simulator speed: simulated seconds per wall second for a two-channel 100 Hz biphasic
train in virtual time, driven through the real pigpio client the way the engine drives it
(a heartbeat edge every 50 ms of simulated time), plus writing the trace."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pigpio

from hw.clock import VirtualClock
from hw.pins import load_pin_map
from hw.sim import SimBoard, SimServer

from . import Figure

SIM_SECONDS = 120


def _train(pins) -> list[pigpio.pulse]:
    """One 10 ms period: channel 0 at 0 µs, channel 1 at 5,000 µs, 300/50/300 µs pulses."""
    def leg(a: int, b: int, rest_us: int) -> list[pigpio.pulse]:
        return [pigpio.pulse(1 << a, 0, 300), pigpio.pulse(0, 1 << a, 50),
                pigpio.pulse(1 << b, 0, 300), pigpio.pulse(0, 1 << b, rest_us)]
    return (leg(pins.ch0_a, pins.ch0_b, 9_350),
            [pigpio.pulse(0, 0, 5_000)] + leg(pins.ch1_a, pins.ch1_b, 4_350))


def run(sim_seconds: int = SIM_SECONDS) -> tuple[float, float, int]:
    pins = load_pin_map()
    clock = VirtualClock()
    board = SimBoard(pins=pins, clock=clock)
    server = SimServer(board, port=0)
    server.start()
    try:
        pi = pigpio.pi("127.0.0.1", server.port)
        for g in pins.outputs:
            pi.set_mode(g, pigpio.OUTPUT)
        pi.wave_add_new()
        for part in _train(pins):
            pi.wave_add_generic(part)
        wid = pi.wave_create()
        pi.write(pins.enable, 1)
        t0 = time.perf_counter()
        pi.wave_chain([255, 0, wid, 255, 3])
        steps = sim_seconds * 20
        for k in range(1, steps + 1):
            clock.advance_to(k * 0.05)
            pi.write(pins.heartbeat, k & 1)
        run_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as d:
            t1 = time.perf_counter()
            board.write_trace(Path(d) / "trace.csv")
            write_s = time.perf_counter() - t1
            rows = sum(1 for _ in open(Path(d) / "trace.csv")) - 1
        pi.stop()
    finally:
        server.stop()
    return sim_seconds / run_s, sim_seconds / (run_s + write_s), rows


def figures() -> list[Figure]:
    speed, speed_with_trace, rows = run()
    return [
        Figure("simulator speed, 2 ch 100 Hz, virtual time", speed, "x real time", ">= 100",
               f"{SIM_SECONDS} s simulated through the pigpio client"),
        Figure("simulator speed incl. writing the trace", speed_with_trace, "x real time", "",
               f"{rows} trace rows"),
    ]
