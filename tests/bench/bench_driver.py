"""Arming the heaviest valid block against the simulator: wall time and socket bytes.

The heaviest valid block is 150 Hz, two channels alternating, 5 s ramps, 60 s
contractions (120 s rest): the most pulses in ramps, the most control blocks.
Figures:
- compile: the pure compiler, once per block (done before the block starts).
- cold arm: every wave created (`wave_add_generic` + `wave_create`), what happens when
  the block changes; dominated by the 12 bytes per pigpio pulse on the socket.
- re-arm + start per cycle: what the engine does each cycle of a block (waves reused,
  one `wave_chain` sent) — the path the <= 10 ms goal is about.
Bytes are counted on the driver's pigpio command socket (both directions).
"""
from __future__ import annotations

import statistics
import time

from hw.clock import VirtualClock
from hw.driver import Stimulator
from hw.pins import load_pin_map
from hw.sim import SimBoard, SimServer
from hw.waveform import CycleSpec, compile_cycle
from tests.bench import Figure

HEAVIEST = CycleSpec(hz=150, pulse_us=450, on_s=60, off_s=120, ramp_up_s=5, ramp_down_s=5,
                     pattern="alternating", channels=2)
LIGHT = CycleSpec(hz=50, pulse_us=300, on_s=2, off_s=2, ramp_up_s=0, ramp_down_s=0)


def figures() -> list[Figure]:
    pins = load_pin_map()
    clock = VirtualClock()
    board = SimBoard(pins=pins, clock=clock)
    server = SimServer(board, host="127.0.0.1", port=0)
    server.start()
    out: list[Figure] = []
    try:
        t = time.perf_counter()
        heavy = compile_cycle(HEAVIEST, pins)
        compile_ms = (time.perf_counter() - t) * 1e3
        light = compile_cycle(LIGHT, pins)
        stim = Stimulator(pins=pins, clock=clock, host="127.0.0.1", port=server.port,
                          max_ma=(60.0, 60.0), use_button=False)
        try:
            cold_ms, cold_bytes, cold_own_ms = [], [], []
            for _ in range(10):
                stim.arm(light)  # other waves in place: the next arm must create everything
                b0 = sum(stim.socket_bytes)
                w0 = stim._sock.waited_s
                t = time.perf_counter()
                stim.arm(heavy)
                cold_ms.append((time.perf_counter() - t) * 1e3)
                cold_own_ms.append(cold_ms[-1] - (stim._sock.waited_s - w0) * 1e3)
                cold_bytes.append(sum(stim.socket_bytes) - b0)
            warm_ms, warm_bytes = [], []
            for i in range(50):
                b0 = sum(stim.socket_bytes)
                t = time.perf_counter()
                stim.arm(heavy)
                stim.start()
                warm_ms.append((time.perf_counter() - t) * 1e3)
                warm_bytes.append(sum(stim.socket_bytes) - b0)
                clock.advance_to((i + 1) * heavy.duration_us / 1e6)
                stim.heartbeat()
            stim.stop()
        finally:
            stim.close()
    finally:
        server.stop()
    note = (f"{heavy.wave_cbs} of 23836 wave CBs, {heavy.wave_ools} OOL, "
            f"{sum(len(w.pulses) for w in heavy.waves)} pigpio pulses in {len(heavy.waves)} waves, "
            f"chain {len(heavy.chain_bytes(list(range(len(heavy.waves)))))} B / {heavy.chain_cbs} CBs")
    out.append(Figure("driver: compile heaviest cycle", compile_ms, "ms", "", note))
    out.append(Figure("driver: re-arm + start heaviest cycle, median of 50", statistics.median(warm_ms),
                      "ms", "<= 10", f"max {max(warm_ms):.2f} ms"))
    out.append(Figure("driver: re-arm + start heaviest cycle, socket bytes", statistics.median(warm_bytes),
                      "bytes", ""))
    out.append(Figure("driver: cold arm heaviest cycle (create all waves), median of 10",
                      statistics.median(cold_ms), "ms", "<= 10",
                      "once per block change; simulator parses 12 B per pigpio pulse"))
    out.append(Figure("driver: cold arm heaviest cycle, driver's own time (not waiting for replies)",
                      statistics.median(cold_own_ms), "ms", "",
                      "the rest is the simulated pigpiod merging 11,904 pulses in Python"))
    out.append(Figure("driver: cold arm heaviest cycle, socket bytes", statistics.median(cold_bytes),
                      "bytes", ""))
    return out


if __name__ == "__main__":
    for f in figures():
        print(f)
